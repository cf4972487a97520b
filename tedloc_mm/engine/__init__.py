"""Training-engine pieces: the optimizer constructor for frozen-encoder models,
checkpoints without the frozen backbone, and the check that a checkpoint holds the
model's weights."""
from .checkpoint_weights import (CheckpointWeightsError, CheckpointWeightsHook,
                                 check_checkpoint_weights)
from .lean_checkpoint import LeanCheckpointHook, restore_frozen_weights, strip_frozen_weights
from .optim_constructor import TrainableParamsOptimWrapperConstructor

__all__ = ['CheckpointWeightsError', 'CheckpointWeightsHook', 'LeanCheckpointHook',
           'TrainableParamsOptimWrapperConstructor', 'check_checkpoint_weights',
           'restore_frozen_weights', 'strip_frozen_weights']
