"""A test-only hook that kills training after a given iteration (resume tests)."""
import os

from mmengine.hooks import Hook

from tedloc_mm.registry import HOOKS


@HOOKS.register_module()
class InterruptAfterIterHook(Hook):
    """Exit the process abruptly right after iteration ``at_iter`` was checkpointed.

    With ``once_file``: only when that file does not exist yet (it is created first), so
    that re-running the very same command trains on, as a driver re-runs a killed step.
    """

    priority = 'LOWEST'  # after CheckpointHook (VERY_LOW) has saved

    def __init__(self, at_iter: int, once_file: str = None):
        self.at_iter = at_iter
        self.once_file = once_file

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if runner.iter + 1 == self.at_iter:
            if self.once_file is not None:
                if os.path.exists(self.once_file):
                    return
                open(self.once_file, 'w').close()
            os._exit(17)  # like a crash or a kill: no cleanup, no final checkpoint
