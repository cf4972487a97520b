"""WSOL transforms: loading (image, CAM, masks), geometry, pseudo-label sampling, packing."""
from .formatting import PackWSOLInputs
from .geometric import (WSOLRandomCrop, WSOLRandomFlip, WSOLRandomResizedCrop,
                        WSOLResize, crop_and_resize)
from .loading import LoadCAM, LoadWSOLAnnotations, LoadWSOLImage
from .pseudo_label_sampler import PseudoLabelSampler

__all__ = [
    'LoadWSOLImage', 'LoadCAM', 'LoadWSOLAnnotations', 'WSOLRandomFlip', 'WSOLResize',
    'WSOLRandomResizedCrop', 'WSOLRandomCrop', 'crop_and_resize', 'PseudoLabelSampler',
    'PackWSOLInputs'
]
