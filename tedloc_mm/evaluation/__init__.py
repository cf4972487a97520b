"""WSOL evaluation: the protocol of Choe et al. (CVPR 2020) as WSOLMetric, plus the
per-image routines for code that runs without the Runner."""
from .box_protocol import (box_iou, boxes_at_threshold, cam_thresholds, normalize_map,
                           prepare_map, quantize_map, rescale_boxes)
from .contour_levels import localization_ious
from .parallel import map_in_threads
from .pxap import pxap_from_histograms, pxap_histograms
from .wsol_metric import WSOLMetric
from .wsol_records import (best_cam_threshold, evaluate_image, evaluate_maps,
                           summarize_records, top5_classes)

__all__ = [
    'WSOLMetric', 'evaluate_maps', 'evaluate_image', 'summarize_records',
    'best_cam_threshold', 'boxes_at_threshold', 'localization_ious', 'box_iou',
    'cam_thresholds', 'normalize_map', 'prepare_map', 'quantize_map', 'rescale_boxes',
    'pxap_histograms', 'pxap_from_histograms', 'top5_classes', 'map_in_threads'
]
