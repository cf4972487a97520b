"""Exact, fast evaluation of the protocol's boxes at every CAM threshold of one map.

The plain way (:func:`.box_protocol.boxes_at_threshold` once per threshold) calls
``cv2.findContours(RETR_TREE)`` once per threshold and then ``boundingRect`` and
``contourArea`` once per contour in Python. This module gives the same IoUs, bit
for bit, with almost no tracing:

1. *Distinct masks.* At threshold ``t`` the mask is ``map8 > int(t * max8)``, which
   equals ``map8 >= v`` where ``v`` is the smallest 8-bit value present in the map
   that exceeds the cut. Thresholds with the same ``v`` share one mask (at most 256
   masks, and none for cuts between two present values).
2. *All masks at once.* :func:`.component_tree.component_levels` reads every
   contour box and the largest ``contourArea`` of every mask from one sweep over
   the pixels sorted by value (see there why each rule is exact).
3. *The rest is traced.* The rare masks the sweep does not settle (a tie for the
   largest area among nested contours) are traced with ``findContours(RETR_TREE)``
   on the mask's bounding box, and the first contour of largest area is taken, as
   ``max(contours, key=cv2.contourArea)`` does.

``tests/test_evaluation/test_wsol_protocol.py`` compares every IoU with the plain
implementation on hundreds of maps; ``benchmarks/metric_speed.py`` measures the
speed-up.
"""
from typing import Tuple

import cv2
import numpy as np

from .box_protocol import EMPTY_BOX, box_iou, quantize_map
from .component_tree import component_levels

_NUM_VALUES = 256


def _levels_of_thresholds(map8: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """For each threshold the kept level ``v`` (mask = map8 >= v), 256 = empty mask."""
    # cv2.calcHist: ~3x np.bincount
    present = cv2.calcHist([map8], [0], None, [_NUM_VALUES], [0, _NUM_VALUES]).ravel() > 0
    max8 = int(np.flatnonzero(present)[-1])
    cuts = (np.asarray(thresholds, dtype=np.float64) * max8).astype(np.int64)
    values = np.where(present, np.arange(_NUM_VALUES), _NUM_VALUES)
    # smallest present value >= c, for c = 0..256
    next_ge = np.append(np.minimum.accumulate(values[::-1])[::-1], _NUM_VALUES)
    return next_ge[np.clip(cuts + 1, 0, _NUM_VALUES)]


def _trace_level(map8: np.ndarray, level: int, gt_boxes: np.ndarray) -> Tuple[float, float]:
    """(IoU of the largest contour's box, best IoU of all contour boxes) of the mask
    ``map8 >= level``, traced with OpenCV on the mask's bounding box."""
    height, width = map8.shape
    ys, xs = np.nonzero(map8 >= level)
    x0, y0 = xs.min(), ys.min()
    crop = (map8[y0:ys.max() + 1, x0:xs.max() + 1] >= level).astype(np.uint8)
    # the crop is padded with zeros by OpenCV itself, as the whole image would be
    contours = cv2.findContours(crop, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE,
                                offset=(int(x0), int(y0)))[0]
    boxes = np.array([cv2.boundingRect(c) for c in contours], dtype=np.int64)
    boxes[:, 2] = np.minimum(boxes[:, 0] + boxes[:, 2], width - 1)
    boxes[:, 3] = np.minimum(boxes[:, 1] + boxes[:, 3], height - 1)
    # np.argmax: the first of equal maxima, as max() over the contour list
    largest = int(np.argmax([cv2.contourArea(c) for c in contours]))
    iou = box_iou(boxes, gt_boxes).max(1)
    return float(iou[largest]), float(iou.max())


def localization_ious(map01: np.ndarray, gt_boxes: np.ndarray, thresholds: np.ndarray
                      ) -> Tuple[np.ndarray, np.ndarray]:
    """Best IoU with the GT boxes at every CAM threshold, largest and all contours.

    Args:
        map01: float (H, W) in [0, 1], the protocol's normalised map.
        gt_boxes: int (G, 4) x0y0x1y1 in evaluation pixels, G >= 1.
        thresholds: (T,) CAM thresholds.

    Returns:
        (iou_largest, iou_all): float64 (T,) each, equal to the plain protocol's.
        ``iou_largest`` uses the box of the largest contour (MaxBoxAcc),
        ``iou_all`` the best over all contours (MaxBoxAccV2), both maximised over
        the GT boxes.
    """
    gt_boxes = np.asarray(gt_boxes, dtype=np.int64).reshape(-1, 4)
    map8 = quantize_map(map01)
    level_of_thr = _levels_of_thresholds(map8, thresholds)
    levels, thr_to_level = np.unique(level_of_thr, return_inverse=True)
    iou_largest = np.zeros(len(levels))
    iou_all = np.zeros(len(levels))

    empty = levels >= _NUM_VALUES
    if empty.any():   # no contour: the box (0, 0, 0, 0)
        iou_largest[empty] = iou_all[empty] = box_iou([EMPTY_BOX], gt_boxes).max()
    live = np.flatnonzero(~empty)
    if len(live):
        iou_all[live], iou_largest[live], to_trace = component_levels(
            map8, levels[live], gt_boxes)
        for i in live[to_trace]:
            iou_largest[i], iou_all[i] = _trace_level(map8, int(levels[i]), gt_boxes)
    return iou_largest[thr_to_level], iou_all[thr_to_level]
