"""Training-engine pieces: the optimizer constructor for frozen-encoder models."""
from .optim_constructor import TrainableParamsOptimWrapperConstructor

__all__ = ['TrainableParamsOptimWrapperConstructor']
