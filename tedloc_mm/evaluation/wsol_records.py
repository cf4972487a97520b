"""Per-image compact WSOL records and their summary: the metric without the Runner.

:func:`evaluate_image` turns one map (+ GT boxes, scores, label, masks) into a
small record of plain NumPy objects (a few hundred bytes, see
:func:`record_nbytes`); :func:`summarize_records` sums any list of records (from
one process or gathered from many) into the metric dict documented in
:class:`~tedloc_mm.evaluation.WSOLMetric`. :func:`evaluate_maps` does both for
in-memory maps, e.g. to evaluate a CAM baseline or choose a threshold.

Record keys (absent when the data lacks them):
    ``hits``   uint8 packed bits of bool (2, I, T): row 0 = largest contour
               (MaxBoxAcc), row 1 = all contours (MaxBoxAccV2); I IoU thresholds,
               T CAM thresholds; True = best IoU >= the IoU threshold.
    ``top5``   int32 (5,): the 5 highest-scoring classes, best first (-1 pads K < 5).
    ``label``  int: the GT class.
    ``pxap``   int32 (2, T + 2): FG and BG histograms (see :mod:`.pxap`).
    ``nonfinite`` True when the map had NaN/inf and was evaluated as zeros
               (WSOLMetric then adds ``img_id`` for its warning).
    ``no_box`` True (set by WSOLMetric) for an image skipped by ``no_box='skip'``.

Kept only when asked (``box_thresholds`` / ``keep_scores`` of
:func:`evaluate_image`), for the per-image results file
(:mod:`.per_image_results`):
    ``boxes``  int16 (B, 4): the largest contour's box x0y0x1y1 (evaluation
               pixels, inclusive) at each of the B ``box_thresholds``.
    ``gt_boxes`` int16 (G, 4): the GT boxes in evaluation pixels.
    ``size``   (h, w) of the evaluation.
    ``top5_scores`` float32 (5,): the scores of ``top5`` (NaN pads K < 5).
    ``img_id`` / ``img_path``: str, set by the caller.
"""
import pickle
from typing import Dict, List, Optional, Sequence

import numpy as np

from .box_protocol import boxes_at_threshold, cam_thresholds, check_boxes, prepare_map
from .contour_levels import localization_ious
from .parallel import map_in_threads
from .pxap import pxap_from_histograms, pxap_histograms, resize_mask

PREFIX = 'wsol'


def _iou_name(iou: float) -> str:
    return f'{iou:g}'


def evaluate_image(pred_map, gt_boxes: Optional[np.ndarray] = None, *,
                   thresholds: np.ndarray, iou_thrs: Sequence[float],
                   eval_size=None, pred_score=None, gt_label=None, gt_mask=None,
                   ignore_mask=None, nonfinite: str = 'zero',
                   normalize: bool = True, box_thresholds=None,
                   keep_scores: bool = False) -> dict:
    """The compact record of one image (see the module docstring).

    Args:
        pred_map: float (H, W) array or tensor, unnormalised.
        gt_boxes: int (G, 4) x0y0x1y1 in *evaluation* pixels (already rescaled,
            see :func:`.box_protocol.rescale_boxes`), G >= 1; None: no box metrics.
        thresholds: CAM thresholds (T,); iou_thrs: IoU thresholds (I,).
        eval_size: (h, w) or None for the map's own size.
        pred_score: (K,) class scores or None; gt_label: int or None.
        gt_mask / ignore_mask: (h, w) masks at any size (nearest-resized) or None.
        nonfinite: ``'zero'`` evaluates a NaN/inf map as zeros (the protocol's rule
            for NaN) and flags it; ``'error'`` raises ValueError.
        normalize: False evaluates the map's values as they are (they must lie in
            [0, 1]), as the reference's ``evaluation.py`` does with saved score
            maps; True (default) min-max normalises, as WSOLMetric does.
        box_thresholds: CAM thresholds (B,) at which to keep the largest contour's
            box (``boxes``, with ``gt_boxes`` and ``size``), or None. Costs one
            ``findContours`` per threshold (all 100: about 3x the evaluation of
            the image, measured 12.8 vs 4.4 ms for a 224 x 224 map).
        keep_scores: keep the scores of the top-5 classes (``top5_scores``).

    Raises:
        ValueError with the reason (the caller adds the image id).
    """
    map01, finite = prepare_map(pred_map, eval_size, normalize=normalize)
    if not finite and nonfinite == 'error':
        raise ValueError('the localization map contains NaN or inf')
    record = {}
    if not finite:
        record['nonfinite'] = True
    if gt_boxes is not None:
        gt_boxes = np.asarray(gt_boxes).reshape(-1, 4)
        problem = check_boxes(gt_boxes)
        if problem or len(gt_boxes) == 0:
            raise ValueError(problem or 'no GT box')
        iou_largest, iou_all = localization_ious(map01, gt_boxes, thresholds)
        iou = np.stack([iou_largest, iou_all])                  # (2, T)
        thr = np.asarray(iou_thrs, dtype=np.float64)[None, :, None]
        record['hits'] = np.packbits((iou[:, None, :] >= thr).ravel())
        if box_thresholds is not None:
            record['gt_boxes'] = _int16_boxes(gt_boxes)
    if box_thresholds is not None:
        record['boxes'] = _int16_boxes(np.concatenate(
            [boxes_at_threshold(map01, t)[:1] for t in np.atleast_1d(box_thresholds)]))
        record['size'] = tuple(int(s) for s in map01.shape)
    if pred_score is not None:
        record['top5'] = top5_classes(pred_score)
        if keep_scores:
            record['top5_scores'] = top5_scores(pred_score, record['top5'])
    if gt_label is not None:
        record['label'] = int(np.asarray(
            gt_label.detach().cpu() if hasattr(gt_label, 'detach') else gt_label).ravel()[0])
    if gt_mask is not None:
        fg = resize_mask(gt_mask, map01.shape)
        ignore = None if ignore_mask is None else resize_mask(ignore_mask, map01.shape)
        record['pxap'] = np.stack(pxap_histograms(map01, fg, ignore, thresholds)).astype(np.int32)
    return record


def top5_classes(pred_score) -> np.ndarray:
    """The 5 highest-scoring classes of a score vector (K,), best first, int32 (5,);
    ties keep the lower class first; -1 pads K < 5. ValueError if empty or non-finite."""
    if hasattr(pred_score, 'detach'):
        pred_score = pred_score.detach().cpu().numpy()
    score = np.asarray(pred_score, dtype=np.float64).ravel()
    if score.size == 0 or not np.isfinite(score).all():
        raise ValueError('pred_score is empty or contains NaN/inf')
    top = np.argsort(-score, kind='stable')[:5]
    return np.pad(top, (0, 5 - len(top)), constant_values=-1).astype(np.int32)


def top5_scores(pred_score, top5: np.ndarray) -> np.ndarray:
    """The scores (float32 (5,)) of the classes ``top5``, NaN where it pads (-1)."""
    if hasattr(pred_score, 'detach'):
        pred_score = pred_score.detach().cpu().numpy()
    score = np.asarray(pred_score, dtype=np.float64).ravel()
    out = np.full(5, np.nan, dtype=np.float32)
    out[top5 >= 0] = score[top5[top5 >= 0]]
    return out


def _int16_boxes(boxes) -> np.ndarray:
    """int (N, 4) boxes as int16 (evaluation sizes stay far below 32768 pixels)."""
    boxes = np.asarray(boxes).reshape(-1, 4)
    if boxes.size and boxes.max() > np.iinfo(np.int16).max:
        raise ValueError(f'box coordinate {boxes.max()} too large for the per-image record')
    return boxes.astype(np.int16)


def record_nbytes(record: dict) -> int:
    """Bytes of one record pickled alone; inside the list that MMEngine's
    ``collect_results`` pickles, a record takes about half of that."""
    return len(pickle.dumps(record, protocol=pickle.HIGHEST_PROTOCOL))


def threshold_index(thresholds: np.ndarray, thr: float) -> int:
    """Index of ``thr`` in the CAM thresholds (to 1e-9), ValueError if absent."""
    idx = int(np.argmin(np.abs(np.asarray(thresholds) - thr)))
    if abs(thresholds[idx] - thr) > 1e-9:
        raise ValueError(f'CAM threshold {thr} is not one of np.arange(0, 1, interval)')
    return idx


def summarize_records(records: List[dict], thresholds: np.ndarray,
                      iou_thrs: Sequence[float], loc_iou: float = 0.5,
                      prefix: Optional[str] = PREFIX,
                      fixed_thrs: Sequence[float] = ()) -> Dict[str, float]:
    """Sum records into metrics (percent; names in WSOLMetric's docstring).

    ``fixed_thrs``: CAM thresholds at which BoxAcc / Top-k Loc are also reported
    (``BoxAcc@thr0.25`` ...), for comparison with fixed-threshold protocols.
    """
    iou_thrs = [float(t) for t in iou_thrs]
    if loc_iou not in iou_thrs:
        raise ValueError(f'loc_iou={loc_iou} must be one of iou_thrs={iou_thrs}')
    n_thr, n_iou, loc = len(thresholds), len(iou_thrs), iou_thrs.index(loc_iou)
    fixed = [(f'thr{t:g}', threshold_index(thresholds, t)) for t in fixed_thrs]

    def name(key):
        return f'{prefix}/{key}' if prefix else key

    metrics = {}
    box_recs = [r for r in records if 'hits' in r]
    if box_recs:
        hits = np.unpackbits(np.stack([r['hits'] for r in box_recs]), axis=1,
                             count=2 * n_iou * n_thr).reshape(-1, 2, n_iou, n_thr).astype(bool)
        n = len(box_recs)
        acc = hits.sum(0) * 100.0 / n                             # (2, I, T)
        best = int(np.argmax(acc[0, loc]))
        metrics[name('MaxBoxAcc')] = float(acc[0, loc].max())
        v2 = acc[1].max(1)
        metrics[name('MaxBoxAccV2')] = float(v2.mean())
        for i, iou in enumerate(iou_thrs):
            metrics[name(f'MaxBoxAccV2@{_iou_name(iou)}')] = float(v2[i])
        metrics[name('best_thr')] = float(thresholds[best])
        for tag, idx in fixed:
            metrics[name(f'BoxAcc@{tag}')] = float(acc[0, loc, idx])
        if all('top5' in r and 'label' in r for r in box_recs):
            top5 = np.stack([r['top5'] for r in box_recs])
            label = np.array([r['label'] for r in box_recs])
            for k, correct in ((1, top5[:, 0] == label), (5, (top5 == label[:, None]).any(1))):
                loc_acc = (hits[:, 0, loc] & correct[:, None]).sum(0) * 100.0 / n
                metrics[name(f'Top{k}Loc')] = float(loc_acc.max())
                metrics[name(f'Top{k}Loc@best_thr')] = float(loc_acc[best])
                for tag, idx in fixed:
                    metrics[name(f'Top{k}Loc@{tag}')] = float(loc_acc[idx])
    cls_recs = [r for r in records if 'top5' in r and 'label' in r]
    if cls_recs:
        top5 = np.stack([r['top5'] for r in cls_recs])
        label = np.array([r['label'] for r in cls_recs])
        metrics[name('Top1Cls')] = float((top5[:, 0] == label).mean() * 100)
        metrics[name('Top5Cls')] = float((top5 == label[:, None]).any(1).mean() * 100)
    mask_recs = [r['pxap'] for r in records if 'pxap' in r]
    if mask_recs:
        hist = np.sum(np.stack(mask_recs).astype(np.int64), axis=0)
        metrics[name('PxAP')] = pxap_from_histograms(hist[0], hist[1])
    return metrics


def best_cam_threshold(metrics: Dict[str, float], prefix: str = PREFIX) -> float:
    """The CAM threshold of MaxBoxAcc from a metric dict (for inference)."""
    key = f'{prefix}/best_thr'
    if key not in metrics:
        raise KeyError(f'{key} not in the metrics (were boxes evaluated?): {sorted(metrics)}')
    return float(metrics[key])


def evaluate_maps(maps, gt_boxes, *, labels=None, scores=None, gt_masks=None,
                  ignore_masks=None, eval_size=None, cam_curve_interval: float = 0.01,
                  iou_thrs: Sequence[float] = (0.3, 0.5, 0.7), loc_iou: float = 0.5,
                  img_ids=None, workers: int = 1, normalize: bool = True
                  ) -> Dict[str, float]:
    """WSOLMetric's numbers for in-memory maps, without the Runner.

    Args:
        maps: sequence of (H, W) maps. gt_boxes: sequence of (G, 4) boxes in
            evaluation pixels (or None per image, e.g. mask-only data).
        labels / scores / gt_masks / ignore_masks / img_ids: optional sequences
            aligned with ``maps``.
        workers: threads that evaluate the images (chunks of images each); the
            numbers are identical for any value (records are summed).
        normalize: see :func:`evaluate_image`.
    """
    thresholds = cam_thresholds(cam_curve_interval)

    def at(seq, i):
        return None if seq is None else seq[i]

    def one(i):
        try:
            return evaluate_image(
                maps[i], at(gt_boxes, i), thresholds=thresholds, iou_thrs=iou_thrs,
                eval_size=eval_size, pred_score=at(scores, i), gt_label=at(labels, i),
                gt_mask=at(gt_masks, i), ignore_mask=at(ignore_masks, i),
                normalize=normalize)
        except ValueError as err:
            name = at(img_ids, i) or f'#{i}'
            raise ValueError(f'image {name}: {err}') from err

    records = map_in_threads(one, len(maps), workers)
    return summarize_records(records, thresholds, iou_thrs, loc_iou)
