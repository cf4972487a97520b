"""WSOL evaluation: the protocol of Choe et al. (CVPR 2020) as WSOLMetric, plus the
per-image routines for code that runs without the Runner.

Imports neither torch nor MMPretrain: :class:`WSOLMetric` (an MMEngine metric, which
needs torch) is imported on first use (``from tedloc_mm.evaluation import WSOLMetric``
works as usual), as are :class:`FGIoUMetric` and :func:`evaluate_seg_export`, which score
masks exported for MMSegmentation.
"""
import importlib

from .box_protocol import (box_iou, boxes_at_threshold, cam_thresholds, normalize_map,
                           prepare_map, quantize_map, rescale_boxes)
from .cam_threshold import DEFAULT_CAM_THRESHOLD, check_cam_threshold, resolve_cam_threshold
from .contour_levels import localization_ious
from .parallel import map_in_threads
from .pxap import pxap_from_histograms, pxap_histograms
from .wsol_records import (best_cam_threshold, evaluate_image, evaluate_maps,
                           summarize_records, top5_classes)

__all__ = [
    'WSOLMetric', 'FGIoUMetric', 'evaluate_seg_export', 'evaluate_maps', 'evaluate_image',
    'summarize_records',
    'best_cam_threshold', 'boxes_at_threshold', 'localization_ious', 'box_iou',
    'cam_thresholds', 'normalize_map', 'prepare_map', 'quantize_map', 'rescale_boxes',
    'pxap_histograms', 'pxap_from_histograms', 'top5_classes', 'map_in_threads',
    'DEFAULT_CAM_THRESHOLD', 'check_cam_threshold', 'resolve_cam_threshold'
]


#: names imported on first use (their modules import torch / MMEngine)
_LAZY = {'WSOLMetric': 'wsol_metric', 'FGIoUMetric': 'seg_metric',
         'evaluate_seg_export': 'seg_metric'}


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(f'{__name__}.{_LAZY[name]}'), name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
