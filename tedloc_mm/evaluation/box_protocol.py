"""The box side of the WSOL evaluation protocol of Choe et al., CVPR 2020.

Everything here works on one image and follows the protocol's reference code
(``clovaai/wsolevaluation``) detail by detail; the names below are used by
:class:`~tedloc_mm.evaluation.WSOLMetric`, by the fast exact evaluator in
:mod:`.contour_levels`, and by code outside the Runner (demo, inference API).

Conventions
    * A *map* is a float array (H, W). :func:`prepare_map` resizes it to the
      evaluation size with bicubic interpolation (``cv2.INTER_CUBIC``) and min-max
      normalises it to [0, 1]; a constant map becomes zeros, and so does a map with
      a NaN (the reference code's rule; we treat +-inf the same way).
    * The 8-bit map is ``uint8(map * 255)`` (truncation). At CAM threshold ``t``
      the binary mask keeps the pixels strictly above ``int(t * max(map8))``.
    * Boxes are ``int`` x0, y0, x1, y1 in evaluation pixels, both ends inclusive:
      their area is ``(x1 - x0 + 1) * (y1 - y0 + 1)`` (the ``+1`` convention).
    * A contour's box is ``cv2.boundingRect`` -> (x, y, x + w, y + h) with x1, y1
      clipped to W - 1, H - 1; a mask with no contour gives the box (0, 0, 0, 0).
"""
from typing import Optional, Sequence, Tuple

import cv2
import numpy as np

#: the box of a mask without any contour
EMPTY_BOX = (0, 0, 0, 0)


def cam_thresholds(interval: float = 0.01) -> np.ndarray:
    """The protocol's CAM thresholds ``np.arange(0, 1, interval)`` (float64)."""
    if not 0 < interval < 1:
        raise ValueError(f'cam threshold interval must be in (0, 1), got {interval}')
    return np.arange(0, 1, interval)


def normalize_map(cam: np.ndarray) -> Tuple[np.ndarray, bool]:
    """Min-max normalise a map to [0, 1] (float64, a new array).

    Returns:
        (map, finite): a constant map gives zeros; a map with NaN or +-inf gives
        zeros and ``finite=False`` so that the caller can count or refuse it.
    """
    cam = np.array(cam, dtype=np.float64)
    if not np.isfinite(cam).all():
        return np.zeros_like(cam), False
    lo, hi = cam.min(), cam.max()
    if lo == hi:
        return np.zeros_like(cam), True
    cam -= lo
    cam /= cam.max()
    return cam, True


def prepare_map(pred_map, eval_size: Optional[Tuple[int, int]] = None,
                normalize: bool = True) -> Tuple[np.ndarray, bool]:
    """The protocol's map: bicubic resize to ``eval_size`` (h, w), then normalise.

    Args:
        pred_map: array-like or tensor (H, W), any float values.
        eval_size: (h, w) of the evaluation, or None to keep the map's own size.
        normalize: False takes the values as they are (float64), as the
            reference's standalone ``evaluation.py`` does with saved score maps;
            they must then lie in [0, 1] (ValueError otherwise; a NaN / inf map
            still gives zeros and ``finite=False``).

    Returns:
        (map01, finite): float64 (h, w) in [0, 1]; see :func:`normalize_map`.
    """
    if hasattr(pred_map, 'detach'):
        pred_map = pred_map.detach().cpu().numpy()
    cam = np.asarray(pred_map, dtype=np.float64)
    if cam.ndim != 2 or cam.shape[0] < 1 or cam.shape[1] < 1:
        raise ValueError(f'a localization map must be 2-D (H, W), got shape {cam.shape}')
    if eval_size is not None and tuple(cam.shape) != tuple(eval_size):
        if not np.isfinite(cam).all():   # cv2 would spread NaN; the result is zeros anyway
            return np.zeros(tuple(eval_size), np.float64), False
        cam = cv2.resize(cam, (int(eval_size[1]), int(eval_size[0])),
                         interpolation=cv2.INTER_CUBIC)
    if normalize:
        return normalize_map(cam)
    if not np.isfinite(cam).all():
        return np.zeros_like(cam), False
    if cam.min() < 0 or cam.max() > 1:
        raise ValueError(f'map values must lie in [0, 1] without normalisation, got '
                         f'min {cam.min():g}, max {cam.max():g}')
    return cam, True


def quantize_map(map01: np.ndarray) -> np.ndarray:
    """``uint8(map * 255)`` with truncation, as the protocol does (H, W) uint8."""
    return (map01 * 255).astype(np.uint8)


def rescale_boxes(boxes, from_hw: Sequence[int], to_hw: Sequence[int]) -> np.ndarray:
    """Rescale x0y0x1y1 boxes from an image of size ``from_hw`` to ``to_hw``.

    Each coordinate is ``int(c * new / old)`` (float64, truncation), the
    protocol's ``resize_bbox``. Returns int64 (N, 4).
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    (old_h, old_w), (new_h, new_w) = map(float, from_hw), map(float, to_hw)
    scale_num = np.array([new_w, new_h, new_w, new_h])
    scale_den = np.array([old_w, old_h, old_w, old_h])
    return np.trunc(boxes * scale_num / scale_den).astype(np.int64)


def check_boxes(boxes: np.ndarray) -> Optional[str]:
    """Why ``boxes`` (N, 4) x0y0x1y1 break the convention, or None if they don't."""
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        return f'boxes must have shape (N, 4), got {boxes.shape}'
    if not np.isfinite(boxes).all():
        return 'boxes contain NaN or inf'
    if (boxes < 0).any():
        return 'box coordinates must be non-negative'
    if (boxes[:, 2] < boxes[:, 0]).any() or (boxes[:, 3] < boxes[:, 1]).any():
        return 'boxes must satisfy x1 >= x0 and y1 >= y0'
    return None


def box_iou(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """IoU matrix (Na, Nb) float64 with the ``+1`` pixel convention.

    A pair whose union is not positive (only possible with invalid boxes) gets 0.
    """
    a = np.asarray(boxes_a, dtype=np.int64).reshape(-1, 1, 4)
    b = np.asarray(boxes_b, dtype=np.int64).reshape(1, -1, 4)
    iw = np.maximum(0, np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]) + 1)
    ih = np.maximum(0, np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]) + 1)
    inter = iw * ih
    area_a = (a[..., 2] - a[..., 0] + 1) * (a[..., 3] - a[..., 1] + 1)
    area_b = (b[..., 2] - b[..., 0] + 1) * (b[..., 3] - b[..., 1] + 1)
    union = area_a + area_b - inter
    ok = union > 0
    return np.where(ok, inter / np.where(ok, union, 1), 0.0)


def contour_box(contour: np.ndarray, height: int, width: int) -> Tuple[int, int, int, int]:
    """The protocol's box of one OpenCV contour, x1/y1 clipped to W-1/H-1."""
    x, y, w, h = cv2.boundingRect(contour)
    return x, y, min(x + w, width - 1), min(y + h, height - 1)


def boxes_at_threshold(map01: np.ndarray, threshold: float,
                       multi_contour: bool = False) -> np.ndarray:
    """The protocol's predicted box(es) of a normalised map at one CAM threshold.

    This is the plain definition: one ``cv2.threshold`` and one
    ``cv2.findContours(RETR_TREE, CHAIN_APPROX_SIMPLE)``. Use it to draw or return
    the box of a single image; to evaluate many thresholds use
    :func:`~tedloc_mm.evaluation.contour_levels.localization_ious`, which gives the
    same boxes much faster.

    Args:
        map01: float (H, W) in [0, 1] (see :func:`prepare_map`).
        threshold: CAM threshold in [0, 1).
        multi_contour: False: the box of the contour of largest ``contourArea``
            (MaxBoxAcc); True: the boxes of all contours, holes included (V2).

    Returns:
        int64 (N, 4) x0y0x1y1; ``[[0, 0, 0, 0]]`` when there is no contour.
    """
    height, width = map01.shape
    map8 = quantize_map(map01)
    _, mask = cv2.threshold(map8, int(threshold * np.max(map8)), 255, cv2.THRESH_BINARY)
    contours = cv2.findContours(mask, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)[0]
    if len(contours) == 0:
        return np.array([EMPTY_BOX], dtype=np.int64)
    if not multi_contour:
        contours = [max(contours, key=cv2.contourArea)]
    return np.array([contour_box(c, height, width) for c in contours], dtype=np.int64)
