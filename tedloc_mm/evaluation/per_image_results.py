"""The per-image results file: one JSON line per evaluated image (format version 1).

Written by ``tools/test.py --analysis-dir DIR`` (``DIR/per_image.jsonl``, through
:class:`~tedloc_mm.evaluation.WSOLMetric`'s ``analysis_dir``) and read by
``tools/analysis_tools/analyze_results.py``. Plain JSON text: reading it runs no code
(no pickle). Sizes: about 300 bytes per image (15 MB for ILSVRC's 50,000 test images);
no per-image curve or map is stored.

Line 1, the header::

    {"format": "tedloc_mm.wsol_per_image", "version": 1,
     "cam_threshold": 0.31, "threshold_source": "best" | "given",
     "loc_iou": 0.5, "num_images": N, "classes": ["name", ...] | null,
     "box_convention": "x0 y0 x1 y1, evaluation pixels, both ends inclusive"}

Then one line per image, in evaluation order::

    {"img_id": "test/3/0001.jpg", "img_path": "...", "size": [h, w],
     "label": 3, "top5": [3, 1, 0, 5, 2], "top5_scores": [0.91, ...],
     "pred_box": [x0, y0, x1, y1], "gt_boxes": [[x0, y0, x1, y1], ...],
     "ious": [0.72, ...], "iou": 0.72,
     "box_correct": true, "cls_correct": true, "kind": "correct"}

``pred_box`` is the box of the largest contour at ``cam_threshold`` (MaxBoxAcc's box),
``ious`` its IoU with each GT box (``+1`` pixel convention), ``iou`` their maximum;
``size`` the evaluation size the boxes refer to. ``box_correct`` is the metric's own
hit (``iou >= loc_iou``), ``cls_correct`` the top-1 class is the label, ``kind`` one of
``correct``, ``wrong_class``, ``wrong_box``, ``both_wrong``
(:data:`.wsol_analysis.FAILURE_KINDS`). Keys whose data is missing (no scores, no
label, no GT box) are null. Top-1 Loc at ``cam_threshold`` is the share of
``"kind": "correct"``.
"""
import json
import math
from typing import List, Optional, Sequence, Tuple

import numpy as np

from .box_protocol import box_iou
from .wsol_analysis import FAILURE_KINDS, image_kinds, unpack_hits

PER_IMAGE_FORMAT = 'tedloc_mm.wsol_per_image'
PER_IMAGE_VERSION = 1
BOX_CONVENTION = 'x0 y0 x1 y1, evaluation pixels, both ends inclusive'
LINE_KEYS = ('img_id', 'size', 'label', 'top5', 'top5_scores', 'pred_box', 'gt_boxes',
             'ious', 'iou', 'box_correct', 'cls_correct', 'kind')


def _score(x: float):
    return None if math.isnan(x) else float(f'{x:.6g}')


def per_image_lines(records: List[dict], thresholds: np.ndarray, iou_thrs: Sequence[float],
                    loc_iou: float, thr_index: int, box_index: Optional[int] = None
                    ) -> List[dict]:
    """One dict per record (keys: module doc).

    Args:
        records: records with ``boxes`` (see :mod:`.wsol_records`).
        thr_index: index of the CAM threshold in ``thresholds``.
        box_index: row of each record's ``boxes`` at that threshold (default
            ``thr_index``: boxes kept at every threshold; 0 when kept at only one).
    """
    iou_thrs = [float(t) for t in iou_thrs]
    loc = iou_thrs.index(float(loc_iou))
    box_index = thr_index if box_index is None else box_index
    lines = []
    for rec in records:
        if 'boxes' not in rec:
            raise ValueError('a record without kept boxes: evaluate with box_thresholds '
                             'to write the per-image file')
        line = dict.fromkeys(LINE_KEYS)
        line['img_id'] = rec.get('img_id')
        if rec.get('img_path'):
            line['img_path'] = rec['img_path']
        line['size'] = list(rec['size'])
        line['pred_box'] = rec['boxes'][box_index].tolist()
        if 'label' in rec:
            line['label'] = int(rec['label'])
        if 'top5' in rec:
            line['top5'] = [int(c) for c in rec['top5'] if c >= 0]
            if 'top5_scores' in rec:
                line['top5_scores'] = [_score(s) for s in rec['top5_scores']][:len(line['top5'])]
        if line['label'] is not None and line['top5'] is not None:
            line['cls_correct'] = bool(line['top5'] and line['top5'][0] == line['label'])
        if 'hits' in rec:
            gt = rec['gt_boxes']
            ious = box_iou(rec['boxes'][box_index][None], gt)[0]
            line['gt_boxes'] = gt.tolist()
            line['ious'] = [round(float(v), 4) for v in ious]
            line['iou'] = round(float(ious.max()), 4)
            hit = unpack_hits([rec], len(iou_thrs), len(thresholds))[0, 0, loc, thr_index]
            line['box_correct'] = bool(hit)
            if line['cls_correct'] is not None:
                line['kind'] = FAILURE_KINDS[int(image_kinds([hit], [line['cls_correct']])[0])]
        lines.append(line)
    return lines


def write_per_image_results(path: str, lines: List[dict], cam_threshold: float,
                            threshold_source: str, loc_iou: float,
                            classes: Optional[Sequence[str]] = None) -> None:
    """Write the header and the lines (see the module doc) to ``path``."""
    header = dict(format=PER_IMAGE_FORMAT, version=PER_IMAGE_VERSION,
                  cam_threshold=float(cam_threshold), threshold_source=threshold_source,
                  loc_iou=float(loc_iou), num_images=len(lines),
                  classes=None if classes is None else [str(c) for c in classes],
                  box_convention=BOX_CONVENTION)
    with open(path, 'w', encoding='utf-8') as f:
        f.write(json.dumps(header) + '\n')
        for line in lines:
            f.write(json.dumps(line, separators=(',', ':')) + '\n')


def read_per_image_results(path: str) -> Tuple[dict, List[dict]]:
    """(header, lines) of a per-image results file.

    Raises ValueError naming the file (and line) for a file of another format or
    a newer version, a line that is not a JSON object or lacks a key, or a line
    count other than the header's ``num_images``.
    """
    lines = []
    with open(path, encoding='utf-8') as f:
        first = f.readline()
        try:
            header = json.loads(first)
        except json.JSONDecodeError as err:
            raise ValueError(f'{path}:1: not a per-image results header ({err})') from None
        if not isinstance(header, dict) or header.get('format') != PER_IMAGE_FORMAT:
            raise ValueError(f'{path}:1: not a per-image results file (format '
                             f'{PER_IMAGE_FORMAT!r}, written by tools/test.py '
                             '--analysis-dir)')
        if header.get('version') != PER_IMAGE_VERSION:
            raise ValueError(f'{path}:1: per-image results version '
                             f'{header.get("version")!r}; this code reads version '
                             f'{PER_IMAGE_VERSION}')
        for lineno, text in enumerate(f, 2):
            if not text.strip():
                continue
            try:
                line = json.loads(text)
            except json.JSONDecodeError as err:
                raise ValueError(f'{path}:{lineno}: not a JSON line ({err})') from None
            missing = [k for k in LINE_KEYS if not isinstance(line, dict) or k not in line]
            if missing:
                raise ValueError(f'{path}:{lineno}: missing {missing}')
            if line['kind'] is not None and line['kind'] not in FAILURE_KINDS:
                raise ValueError(f'{path}:{lineno}: unknown kind {line["kind"]!r}')
            lines.append(line)
    if len(lines) != header.get('num_images'):
        raise ValueError(f'{path}: {len(lines)} image lines, the header says '
                         f'{header.get("num_images")} (a truncated file?)')
    return header, lines
