"""WSOL transforms: loading (image, CAM, masks), geometry, pseudo-label sampling, packing;
and the label check of MMSegmentation pipelines."""
from .check_seg_label import CheckSegLabel
from .formatting import PackWSOLInputs
from .geometric import (WSOLRandomCrop, WSOLRandomFlip, WSOLRandomResizedCrop,
                        WSOLResize, crop_and_resize)
from .loading import LoadCAM, LoadWSOLAnnotations, LoadWSOLImage
from .pseudo_label_sampler import PseudoLabelSampler

__all__ = [
    'LoadWSOLImage', 'LoadCAM', 'LoadWSOLAnnotations', 'WSOLRandomFlip', 'WSOLResize',
    'WSOLRandomResizedCrop', 'WSOLRandomCrop', 'crop_and_resize', 'PseudoLabelSampler',
    'PackWSOLInputs', 'CheckSegLabel'
]
