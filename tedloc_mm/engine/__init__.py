"""Training-engine pieces: the optimizer constructor for frozen-encoder models and
checkpoints without the frozen backbone."""
from .lean_checkpoint import LeanCheckpointHook, restore_frozen_weights, strip_frozen_weights
from .optim_constructor import TrainableParamsOptimWrapperConstructor

__all__ = ['LeanCheckpointHook', 'TrainableParamsOptimWrapperConstructor',
           'restore_frozen_weights', 'strip_frozen_weights']
