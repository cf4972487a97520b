"""What lies behind the WSOL numbers: curves, a per-class table and a failure breakdown.

Everything here is computed from the compact per-image records of
:mod:`.wsol_records` (the ones :class:`~tedloc_mm.evaluation.WSOLMetric` and
``tools/analysis_tools/eval_scoremaps.py`` sum into their metrics), so the curves and
tables describe exactly the evaluated numbers:

* :func:`wsol_curves`: box accuracy (percent) at every CAM threshold, for every IoU
  threshold, of the largest contour (MaxBoxAcc is the maximum of its curve at
  ``loc_iou``) and of all contours (MaxBoxAccV2 is the mean over IoUs of those
  curves' maxima), and ``BoxAcc@per_image_thr``, the box accuracy when every image
  takes its own best CAM threshold (an upper bound of MaxBoxAcc: what one threshold
  shared by all images costs a map whose values are calibrated differently from
  image to image); Top-1 / Top-5 Loc per CAM threshold when classes were predicted;
  PxAP's precision-recall curve when masks were evaluated. A JSON-ready dict
  (``format`` / ``version`` below), the input of
  :func:`tedloc_mm.analysis.wsol_curves.plot_wsol_curves`.
* :func:`per_class_table`: per GT class, at the global best CAM threshold (the one of
  MaxBoxAcc): box accuracy, Top-1 Loc and Top-1 Cls, and a last row over all images
  (equal to ``BoxAcc`` = MaxBoxAcc, ``Top1Loc@best_thr`` and ``Top1Cls`` of the
  metrics when every box image has a label and scores).
* :func:`failure_breakdown`: each image's kind at that threshold: ``correct`` (box and
  class right: Top-1 Loc), ``wrong_class`` (box right, class wrong), ``wrong_box``
  (class right, box wrong), ``both_wrong``.

Nothing here plots (no matplotlib): the evaluation package stays light.
"""
import csv
import json
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence

import numpy as np

from .pxap import pxap_curve, pxap_from_histograms

CURVES_FORMAT = 'tedloc_mm.wsol_curves'
CURVES_VERSION = 1
#: the failure kinds, in the order of the breakdown
FAILURE_KINDS = ('correct', 'wrong_class', 'wrong_box', 'both_wrong')


def iou_key(iou: float) -> str:
    """The JSON key of an IoU threshold: 0.5 -> '0.5'."""
    return f'{float(iou):g}'


def unpack_hits(records: List[dict], num_iou: int, num_thr: int) -> np.ndarray:
    """bool (N, 2, I, T) hit bits of records that have ``hits`` (see
    :mod:`.wsol_records`): variant 0 = largest contour, 1 = all contours."""
    return np.unpackbits(np.stack([r['hits'] for r in records]), axis=1,
                         count=2 * num_iou * num_thr).reshape(
                             -1, 2, num_iou, num_thr).astype(bool)


def _classified(records: List[dict]) -> bool:
    return bool(records) and all('top5' in r and 'label' in r for r in records)


def _best_index(hits: np.ndarray, loc: int) -> int:
    """The CAM threshold index of MaxBoxAcc (the first one on ties, as the metric)."""
    return int(np.argmax(hits[:, 0, loc].sum(0)))


def wsol_curves(records: List[dict], thresholds: np.ndarray, iou_thrs: Sequence[float],
                loc_iou: float = 0.5) -> dict:
    """The curves behind the metrics (see the module doc), JSON-ready.

    Returns:
        dict with ``format``, ``version``, ``num_images`` (with boxes),
        ``cam_thresholds`` (T,), ``iou_thrs``, ``loc_iou``; with boxes:
        ``box_acc`` = {``'largest'``: {iou key: (T,) percent}, ``'all'``: {...}},
        ``best_thr``, ``MaxBoxAcc``, ``MaxBoxAccV2``, ``BoxAcc@per_image_thr``
        (largest contour at ``loc_iou``, each image at a threshold where it hits, if
        one exists); with classes:
        ``top1_loc`` and ``top5_loc`` (T,) percent at ``loc_iou``; with masks:
        ``pxap`` = {``precision``, ``recall`` (points with a predicted pixel,
        highest bin first), ``PxAP``}.
    """
    iou_thrs = [float(t) for t in iou_thrs]
    loc = iou_thrs.index(float(loc_iou))
    out = dict(format=CURVES_FORMAT, version=CURVES_VERSION,
               cam_thresholds=[float(t) for t in thresholds], iou_thrs=iou_thrs,
               loc_iou=float(loc_iou), num_images=0)
    box_recs = [r for r in records if 'hits' in r]
    if box_recs:
        hits = unpack_hits(box_recs, len(iou_thrs), len(thresholds))
        n = len(box_recs)
        acc = hits.sum(0) * 100.0 / n                                   # (2, I, T)
        best = _best_index(hits, loc)
        out['num_images'] = n
        out['box_acc'] = {variant: {iou_key(t): acc[v, i].tolist()
                                    for i, t in enumerate(iou_thrs)}
                          for v, variant in enumerate(('largest', 'all'))}
        out['best_thr'] = float(thresholds[best])
        out['MaxBoxAcc'] = float(acc[0, loc].max())
        out['MaxBoxAccV2'] = float(acc[1].max(1).mean())
        out['BoxAcc@per_image_thr'] = float(hits[:, 0, loc].any(1).sum() * 100.0 / n)
        if _classified(box_recs):
            top5 = np.stack([r['top5'] for r in box_recs])
            label = np.array([r['label'] for r in box_recs])
            for k, right in ((1, top5[:, 0] == label), (5, (top5 == label[:, None]).any(1))):
                out[f'top{k}_loc'] = ((hits[:, 0, loc] & right[:, None]).sum(0)
                                      * 100.0 / n).tolist()
    masks = [r['pxap'] for r in records if 'pxap' in r]
    if masks:
        hist = np.sum(np.stack(masks).astype(np.int64), axis=0)
        precision, recall, predicted = pxap_curve(hist[0], hist[1])
        keep = predicted > 0
        out['pxap'] = dict(precision=precision[keep].tolist(), recall=recall[keep].tolist(),
                           PxAP=pxap_from_histograms(hist[0], hist[1]))
    return out


def check_curves(curves: dict, source: str = 'curves') -> dict:
    """``curves`` if it is a curves dict of this version, else ValueError naming
    ``source`` (e.g. the file it was read from)."""
    if not isinstance(curves, dict) or curves.get('format') != CURVES_FORMAT:
        raise ValueError(f'{source}: not a WSOL curves file (format {CURVES_FORMAT!r}, '
                         'written by tools/test.py --analysis-dir or eval_scoremaps.py '
                         '--plot_dir)')
    if curves.get('version') != CURVES_VERSION:
        raise ValueError(f'{source}: curves version {curves.get("version")!r}, this code '
                         f'reads version {CURVES_VERSION}')
    return curves


def _analysed(records: List[dict], thresholds, iou_thrs, loc_iou, thr_index):
    """(box records with classes, hits, loc, threshold index) for the two tables."""
    recs = [r for r in records if 'hits' in r]
    if not recs:
        raise ValueError('no image with GT boxes: no per-class table / failure breakdown')
    if not _classified(recs):
        raise ValueError('the per-class table and the failure breakdown need the '
                         'predicted classes (pred_score / --predictions) and the labels '
                         'of every image with boxes')
    iou_thrs = [float(t) for t in iou_thrs]
    loc = iou_thrs.index(float(loc_iou))
    hits = unpack_hits(recs, len(iou_thrs), len(thresholds))
    idx = _best_index(hits, loc) if thr_index is None else int(thr_index)
    return recs, hits, loc, idx


def image_kinds(box_right: np.ndarray, cls_right: np.ndarray) -> np.ndarray:
    """The failure kind (index into :data:`FAILURE_KINDS`) of each image, int (N,)."""
    box_right, cls_right = np.asarray(box_right, bool), np.asarray(cls_right, bool)
    return np.where(box_right, np.where(cls_right, 0, 1), np.where(cls_right, 2, 3))


def failure_breakdown(records: List[dict], thresholds: np.ndarray,
                      iou_thrs: Sequence[float], loc_iou: float = 0.5,
                      thr_index: Optional[int] = None) -> dict:
    """Each image's kind at one CAM threshold (default: MaxBoxAcc's), counted.

    Returns:
        dict with ``cam_threshold``, ``loc_iou``, ``num_images``, ``counts`` and
        ``percent`` ({kind: value} over :data:`FAILURE_KINDS`; the counts add up to
        ``num_images``, ``percent['correct']`` is Top-1 Loc at that threshold) and
        ``kinds``: the kind of each box record, in order (list of str).
    """
    recs, hits, loc, idx = _analysed(records, thresholds, iou_thrs, loc_iou, thr_index)
    label = np.array([r['label'] for r in recs])
    cls_right = np.stack([r['top5'] for r in recs])[:, 0] == label
    kinds = image_kinds(hits[:, 0, loc, idx], cls_right)
    counts = {k: int((kinds == i).sum()) for i, k in enumerate(FAILURE_KINDS)}
    n = len(recs)
    return dict(cam_threshold=float(thresholds[idx]), loc_iou=float(loc_iou),
                num_images=n, counts=counts,
                percent={k: c * 100.0 / n for k, c in counts.items()},
                kinds=[FAILURE_KINDS[i] for i in kinds])


def per_class_table(records: List[dict], thresholds: np.ndarray, iou_thrs: Sequence[float],
                    loc_iou: float = 0.5, class_names: Optional[Sequence[str]] = None,
                    thr_index: Optional[int] = None) -> List[dict]:
    """One row per GT class (in class order) and a last row ``'all'``.

    Each row: ``class`` (index, or -1 for all), ``name``, ``images``, ``BoxAcc``
    (largest contour at ``loc_iou``), ``Top1Loc``, ``Top1Cls`` (percent) and
    ``cam_threshold``, all at one CAM threshold (default: MaxBoxAcc's).
    """
    recs, hits, loc, idx = _analysed(records, thresholds, iou_thrs, loc_iou, thr_index)
    label = np.array([r['label'] for r in recs])
    cls_right = np.stack([r['top5'] for r in recs])[:, 0] == label
    box_right = hits[:, 0, loc, idx]
    rows = []
    for c in sorted(set(label.tolist())) + [None]:
        sel = np.ones(len(recs), bool) if c is None else label == c
        name = 'all' if c is None else (
            class_names[c] if class_names is not None and 0 <= c < len(class_names)
            else str(c))
        rows.append({'class': -1 if c is None else int(c), 'name': name,
                     'images': int(sel.sum()),
                     'BoxAcc': float(box_right[sel].mean() * 100),
                     'Top1Loc': float((box_right & cls_right)[sel].mean() * 100),
                     'Top1Cls': float(cls_right[sel].mean() * 100),
                     'cam_threshold': float(thresholds[idx])})
    return rows


PER_CLASS_COLUMNS = ('class', 'name', 'images', 'BoxAcc', 'Top1Loc', 'Top1Cls')


def write_per_class_csv(rows: List[dict], path: str) -> None:
    """The table as CSV (numbers in full precision)."""
    with open(path, 'w', newline='', encoding='utf-8') as f:
        writer = csv.DictWriter(f, fieldnames=PER_CLASS_COLUMNS + ('cam_threshold', ))
        writer.writeheader()
        for row in rows:
            writer.writerow(row)


def per_class_markdown(rows: List[dict]) -> str:
    """The table as Markdown (percent with 2 decimals)."""
    thr = rows[-1]['cam_threshold'] if rows else float('nan')
    lines = [f'Per class at CAM threshold {thr:g} (the MaxBoxAcc threshold of all images)',
             '', '| class | name | images | BoxAcc | Top-1 Loc | Top-1 Cls |',
             '|---:|---|---:|---:|---:|---:|']
    for row in rows:
        idx = '' if row['class'] < 0 else str(row['class'])
        name = row['name'].replace('|', '\\|')
        if row['class'] < 0:
            name = f'**{name}**'
        lines.append(f'| {idx} | {name} | {row["images"]} | {row["BoxAcc"]:.2f} | '
                     f'{row["Top1Loc"]:.2f} | {row["Top1Cls"]:.2f} |')
    return '\n'.join(lines) + '\n'


def write_analysis(out_dir: str, records: List[dict], thresholds: np.ndarray,
                   iou_thrs: Sequence[float], loc_iou: float = 0.5,
                   class_names: Optional[Sequence[str]] = None) -> Dict[str, str]:
    """Write ``curves.json`` and, when classes were predicted for every box image,
    ``per_class.csv``, ``per_class.md`` and ``failures.json`` (the breakdown
    without the per-image kinds) into ``out_dir``; returns {name: path}."""
    os.makedirs(out_dir, exist_ok=True)
    written = {}
    path = osp.join(out_dir, 'curves.json')
    with open(path, 'w', encoding='utf-8') as f:
        json.dump(wsol_curves(records, thresholds, iou_thrs, loc_iou), f)
    written['curves'] = path
    box_recs = [r for r in records if 'hits' in r]
    if _classified(box_recs):
        rows = per_class_table(records, thresholds, iou_thrs, loc_iou, class_names)
        written['per_class_csv'] = osp.join(out_dir, 'per_class.csv')
        write_per_class_csv(rows, written['per_class_csv'])
        written['per_class_md'] = osp.join(out_dir, 'per_class.md')
        with open(written['per_class_md'], 'w', encoding='utf-8') as f:
            f.write(per_class_markdown(rows))
        breakdown = failure_breakdown(records, thresholds, iou_thrs, loc_iou)
        breakdown.pop('kinds')
        written['failures'] = osp.join(out_dir, 'failures.json')
        with open(written['failures'], 'w', encoding='utf-8') as f:
            json.dump(breakdown, f, indent=2)
    return written
