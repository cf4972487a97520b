"""Training-engine pieces: the optimizer constructor for frozen-encoder models,
checkpoints without the frozen backbone, the check that a checkpoint holds the model's
weights, the frozen-feature cache (:mod:`.feature_cache_hook`), the Runner config of
the tools (:mod:`.runner_config`) and the linear probe of the demo's stage 1
(:mod:`.linear_probe`, imported by path: it needs scikit-learn)."""
from .checkpoint_weights import (CheckpointWeightsError, CheckpointWeightsHook,
                                 check_checkpoint_weights)
from .feature_cache_hook import FrozenFeatureCacheHook, check_pipeline_cacheable
from .lean_checkpoint import LeanCheckpointHook, restore_frozen_weights, strip_frozen_weights
from .optim_constructor import TrainableParamsOptimWrapperConstructor
from .runner_config import build_runner_config, setup_dist_backend

__all__ = ['CheckpointWeightsError', 'CheckpointWeightsHook', 'FrozenFeatureCacheHook',
           'LeanCheckpointHook', 'TrainableParamsOptimWrapperConstructor',
           'build_runner_config', 'check_checkpoint_weights', 'check_pipeline_cacheable',
           'restore_frozen_weights', 'setup_dist_backend',
           'strip_frozen_weights']
