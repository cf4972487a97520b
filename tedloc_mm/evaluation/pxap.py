"""PxAP: pixel average precision of a localization map against a GT mask.

The protocol of Choe et al. (``MaskEvaluator`` of ``clovaai/wsolevaluation``):
per image, histograms of the normalised map's values on foreground and on
background pixels (pixels of the ignore mask excluded) over the bins
``[t_0, t_1), ..., [t_{T-1}, 1), [1, 2), [2, 3]`` with ``t`` the CAM thresholds;
the histograms are summed over the data set, and the average precision is the
area under the precision-recall curve swept from the highest bin down.
"""
import cv2
import numpy as np


def pxap_bin_edges(thresholds: np.ndarray) -> np.ndarray:
    """The histogram edges: the CAM thresholds, then 1, 2, 3 (T + 3 edges)."""
    return np.append(np.asarray(thresholds, dtype=np.float64), [1.0, 2.0, 3.0])


def resize_mask(mask, size) -> np.ndarray:
    """A mask (h, w) -> bool (H, W) by nearest-neighbour resizing, ``> 0`` kept."""
    if hasattr(mask, 'detach'):
        mask = mask.detach().cpu().numpy()
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f'a mask must be 2-D (h, w), got shape {mask.shape}')
    if tuple(mask.shape) != tuple(size):
        mask = cv2.resize(mask.astype(np.uint8), (int(size[1]), int(size[0])),
                          interpolation=cv2.INTER_NEAREST)
    return mask > 0


def pxap_histograms(map01: np.ndarray, gt_mask: np.ndarray, ignore_mask=None,
                    thresholds: np.ndarray = None):
    """Per-image FG and BG histograms (T + 2,) int64 each.

    Args:
        map01: float (H, W) in [0, 1].
        gt_mask: bool (H, W), True = object pixel.
        ignore_mask: bool (H, W) or None; True pixels are left out of both
            histograms (as the protocol's ignore region minus the foreground:
            an object pixel is never ignored).
        thresholds: the CAM thresholds (T,).
    """
    edges = pxap_bin_edges(thresholds)
    fg = gt_mask
    bg = ~gt_mask
    if ignore_mask is not None:
        bg = bg & ~ignore_mask
    fg_hist = np.histogram(map01[fg], bins=edges)[0]
    bg_hist = np.histogram(map01[bg], bins=edges)[0]
    return fg_hist.astype(np.int64), bg_hist.astype(np.int64)


def pxap_curve(fg_hist: np.ndarray, bg_hist: np.ndarray):
    """The precision-recall curve of the summed FG / BG histograms.

    The points are the bins' upper cumulative sums, from the highest bin down
    (point ``j`` predicts the pixels of the ``j + 1`` highest bins as object).

    Returns:
        (precision, recall, predicted): float64 (T + 2,) each; ``predicted`` is the
        number of pixels predicted as object at each point (precision is 0 where
        it is 0). Raises ValueError without any FG pixel.
    """
    fg_hist = np.asarray(fg_hist, dtype=np.float64)
    bg_hist = np.asarray(bg_hist, dtype=np.float64)
    num_fg = fg_hist.sum()
    if num_fg <= 0:
        raise ValueError('PxAP needs at least one foreground pixel in the evaluated masks')
    tp = fg_hist[::-1].cumsum()
    fp = bg_hist[::-1].cumsum()
    predicted = tp + fp
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = tp / num_fg
    return precision, recall, predicted


def pxap_from_histograms(fg_hist: np.ndarray, bg_hist: np.ndarray) -> float:
    """Average precision (percent) from the summed FG / BG histograms.

    AP = sum of precision x recall increments over the points of
    :func:`pxap_curve` with at least one predicted positive. Raises ValueError
    without any FG pixel.
    """
    precision, recall, predicted = pxap_curve(fg_hist, bg_hist)
    keep = predicted[1:] > 0
    return float((precision[1:] * np.diff(recall))[keep].sum() * 100)
