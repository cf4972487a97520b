"""A test-only hook that kills training after a given iteration (resume test)."""
import os

from mmengine.hooks import Hook

from tedloc_mm.registry import HOOKS


@HOOKS.register_module()
class InterruptAfterIterHook(Hook):
    """Exit the process abruptly right after iteration ``at_iter`` was checkpointed."""

    priority = 'LOWEST'  # after CheckpointHook (VERY_LOW) has saved

    def __init__(self, at_iter: int):
        self.at_iter = at_iter

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if runner.iter + 1 == self.at_iter:
            os._exit(17)  # like a crash or a kill: no cleanup, no final checkpoint
