"""Evaluate a folder of saved score maps, as ``clovaai/wsolevaluation`` lays them out.

This is the engine of ``tools/analysis_tools/eval_scoremaps.py``, a drop-in for the
reference's ``evaluation.py``. The reference's conventions, kept exactly:

* Metadata: ``<metadata_root>/<dataset_name>/<split>/`` in the WSOL metadata format
  (read with :func:`tedloc_mm.fileio.wsol_metadata.read_wsol_split`);
  OpenImages' ``image_sizes.txt`` may be empty (masks need no size). Also accepted
  (:func:`split_metadata_dir`): ``<metadata_root>/<split>/`` (our benchmarks'
  ``<data_root>/metadata/<split>``) and ``<metadata_root>`` itself holding
  ``image_ids.txt`` (what the reference's ``evaluation.py`` reads).
* Score maps: one ``.npy`` per image id at ``<scoremap_root>/<image_id>.npy``, the
  id kept whole (``val/ILSVRC2012_val_00000001.JPEG`` ->
  ``val/ILSVRC2012_val_00000001.JPEG.npy``), as the reference's ``np.save`` writes
  and its ``CamDataset`` reads them. Each map is 2-D, ``RESIZE_LENGTH`` x
  ``RESIZE_LENGTH`` (224), values in [0, 1], evaluated as saved (float64, no
  resizing, no normalisation). ``resize=True`` instead accepts any size: bicubic
  resize to 224 and min-max normalisation, the steps of the reference's
  ``inference.py`` before it saves a map.
* GT boxes: from the original image size to 224 x 224 with ``int`` truncation.
* Masks: ``<mask_root>/<dataset_name>/<mask_path>`` (or ``<mask_root>/<mask_path>``
  when there is no ``<dataset_name>`` folder: our benchmarks' data root), read as 8-bit
  grey, nearest-resized to 224 x 224, ``> 0.5``; instance masks OR-ed; the ignore
  region minus the foreground is left out of PxAP.

The per-image work is :func:`.wsol_records.evaluate_image` (the same code as
WSOLMetric), run over worker threads (:func:`.parallel.map_in_threads`).
"""
import os.path as osp
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from tedloc_mm.fileio.class_names import read_class_names
from tedloc_mm.fileio.wsol_metadata import read_wsol_split
from . import component_tree
from .box_protocol import cam_thresholds, rescale_boxes
from .parallel import map_in_threads
from .wsol_analysis import write_analysis
from .wsol_records import evaluate_image, summarize_records, top5_classes

#: the reference evaluates 224 x 224 maps (``_RESIZE_LENGTH`` of its evaluation.py)
RESIZE_LENGTH = 224
DATASET_NAMES = ('CUB', 'ILSVRC', 'OpenImages')


class ScoremapError(ValueError):
    """A score map or predictions file is missing or wrong; the message names it."""


def split_metadata_dir(metadata_root: str, dataset_name: str, split: str) -> str:
    """The folder of a split's metadata: ``<root>/<dataset_name>/<split>`` (the
    reference's layout), else ``<root>/<split>`` (our benchmarks), else ``<root>``
    when it holds ``image_ids.txt``; the first when none exists (its reader then
    names the missing file)."""
    candidates = (osp.join(metadata_root, dataset_name, split),
                  osp.join(metadata_root, split), metadata_root)
    for path in candidates:
        if osp.isfile(osp.join(path, 'image_ids.txt')):
            return path
    return candidates[0]


def scoremap_path(scoremap_root: str, img_id: str) -> str:
    """``<scoremap_root>/<image_id>.npy``: the reference's file of one image id."""
    return osp.join(scoremap_root, img_id + '.npy')


def load_scoremap(path: str, img_id: str, resize: bool = False,
                  size: int = RESIZE_LENGTH) -> np.ndarray:
    """Read and check one saved map -> float64 (H, W).

    Raises ScoremapError naming the file for a missing or unreadable file, a
    non-numeric array, a shape other than (size, size) (unless ``resize``),
    NaN / inf, or values outside [0, 1] (unless ``resize``, which normalises).
    """
    if not osp.isfile(path):
        raise ScoremapError(f'score map of image {img_id!r} not found: {path} (one .npy '
                            'per image id, named <scoremap_root>/<image id>.npy)')
    try:
        cam = np.load(path, allow_pickle=False)
    except Exception as err:   # ValueError, OSError, EOFError, UnpicklingError ...
        raise ScoremapError(f'{path}: cannot read the score map of {img_id!r} as a '
                            f'.npy array ({type(err).__name__}: {err})') from err
    if not isinstance(cam, np.ndarray) or cam.dtype.kind not in 'fiub':
        raise ScoremapError(f'{path}: the score map of {img_id!r} must be a real-valued '
                            f'array, got {getattr(cam, "dtype", type(cam))}')
    expected = (size, size)
    if cam.ndim != 2 or (not resize and cam.shape != expected):
        hint = ('' if resize else '; --resize_scoremaps resizes maps of another size '
                'bicubically and min-max normalises them, as the reference\'s '
                'inference.py does before saving')
        raise ScoremapError(f'{path}: score map of {img_id!r} has shape {cam.shape}, '
                            f'expected {expected if not resize else "(H, W)"}{hint}')
    cam = cam.astype(np.float64)
    if not np.isfinite(cam).all():
        raise ScoremapError(f'{path}: the score map of {img_id!r} contains NaN or inf')
    if not resize and (cam.min() < 0 or cam.max() > 1):
        raise ScoremapError(
            f'{path}: score map values of {img_id!r} must lie in [0, 1], got min '
            f'{cam.min():g}, max {cam.max():g} (--resize_scoremaps min-max normalises)')
    return cam


def load_mask(path: str, size: int = RESIZE_LENGTH) -> np.ndarray:
    """A mask PNG -> bool (size, size): grey, nearest-resized, ``> 0.5``."""
    mask = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
    if mask is None:
        raise ScoremapError(f'mask file missing or unreadable: {path}')
    mask = cv2.resize(np.float32(mask), (size, size), interpolation=cv2.INTER_NEAREST)
    return mask > 0.5


def read_predictions(path: str, img_ids: Sequence[str], fmt: str = 'auto'
                     ) -> Tuple[Dict[str, np.ndarray], int]:
    """Read a predictions file -> ({image id: int32 (5,) top-5 classes, -1 padded},
    number of lines ignored).

    Format (comma-separated, like the metadata; ``#`` starts a comment line)::

        <image_id>,<c1>[,<c2>,...,<c5>]      top-k class indices, best first (k <= 5)
        <image_id>,<s_0>,<s_1>,...,<s_K-1>   a score per class (K values)

    ``fmt='auto'`` reads the file as top-k lines when every line has at most 5
    values and all are integers, otherwise as score vectors (then every line must
    have the same K); ``'topk'`` / ``'scores'`` force one reading (e.g. scores of
    K <= 5 classes written as integers). Every id in ``img_ids`` needs a line;
    lines of other ids are ignored and counted.
    """
    if fmt not in ('auto', 'topk', 'scores'):
        raise ValueError(f"predictions format must be 'auto', 'topk' or 'scores', got {fmt!r}")
    if not osp.isfile(path):
        raise ScoremapError(f'predictions file not found: {path}')
    rows = []
    with open(path, encoding='utf-8') as f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith('#'):
                continue
            fields = [s.strip() for s in line.split(',')]
            if len(fields) < 2 or not fields[0]:
                raise ScoremapError(f'{path}:{lineno}: expected <image_id>,<value>[,...], '
                                    f'got {line[:80]!r}')
            rows.append((lineno, fields[0], fields[1:]))
    if not rows:
        raise ScoremapError(f'{path}: no prediction lines')

    def is_int(text):
        return text.lstrip('+-').isdigit()

    if fmt == 'auto':
        fmt = 'topk' if all(len(v) <= 5 and all(map(is_int, v)) for _, _, v in rows) \
            else 'scores'
    wanted = set(img_ids)
    out: Dict[str, np.ndarray] = {}
    num_scores = None
    ignored = 0
    for lineno, img_id, values in rows:
        if img_id in out:
            raise ScoremapError(f'{path}:{lineno}: duplicate image id {img_id!r}')
        if img_id not in wanted:
            ignored += 1
            continue
        if fmt == 'topk':
            if len(values) > 5 or not all(map(is_int, values)):
                raise ScoremapError(f'{path}:{lineno}: a top-k line needs 1 to 5 integer '
                                    f'class indices, got {values[:8]}')
            top = np.array([int(v) for v in values], dtype=np.int64)
            if (top < 0).any() or len(set(top.tolist())) != len(top):
                raise ScoremapError(f'{path}:{lineno}: class indices must be distinct and '
                                    f'>= 0, got {top.tolist()}')
            out[img_id] = np.pad(top, (0, 5 - len(top)), constant_values=-1).astype(np.int32)
            continue
        num_scores = num_scores or len(values)
        if len(values) != num_scores:
            raise ScoremapError(f'{path}:{lineno}: {len(values)} scores, but earlier lines '
                                f'have {num_scores}')
        try:
            out[img_id] = top5_classes(np.array([float(v) for v in values]))
        except ValueError as err:
            raise ScoremapError(f'{path}:{lineno}: {err}') from err
    missing = [i for i in img_ids if i not in out]
    if missing:
        raise ScoremapError(f'{path}: {len(missing)} image id(s) of the split have no '
                            f'prediction line, e.g. {missing[0]!r}')
    return out, ignored


def _short_topk_lines(path: str, fmt: str) -> bool:
    """Whether ``path`` is read as top-k lines (see :func:`read_predictions`) and some
    line names fewer than 5 classes."""
    counts, all_int = [], True
    with open(path, encoding='utf-8') as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith('#'):
                continue
            values = [s.strip() for s in line.split(',')[1:]]
            counts.append(len(values))
            all_int = all_int and all(v.lstrip('+-').isdigit() for v in values)
    topk = fmt == 'topk' or (fmt == 'auto' and all_int and max(counts, default=0) <= 5)
    return topk and min(counts, default=5) < 5


def box_accuracies(records: List[dict], num_iou: int, num_thr: int) -> np.ndarray:
    """Box accuracy (percent) per (variant, IoU, CAM threshold), float64 (2, I, T):
    variant 0 = largest contour, 1 = all contours; the reference's
    ``num_correct * 100. / cnt``."""
    hits = np.unpackbits(np.stack([r['hits'] for r in records]), axis=1,
                         count=2 * num_iou * num_thr).reshape(-1, 2, num_iou, num_thr)
    return hits.sum(0, dtype=np.int64) * 100.0 / float(len(records))


def evaluate_scoremap_dir(scoremap_root: str, metadata_root: str, mask_root: str,
                          dataset_name: str, split: str, *,
                          cam_curve_interval: float = 0.01,
                          iou_threshold_list: Sequence[int] = (30, 50, 70),
                          multi_contour_eval: bool = False, multi_iou_eval: bool = False,
                          predictions: Optional[str] = None,
                          predictions_format: str = 'auto', resize: bool = False,
                          workers: int = 1, size: int = RESIZE_LENGTH,
                          analysis_dir: Optional[str] = None,
                          progress: Optional[Callable[[int], None]] = None,
                          on_start: Optional[Callable[[int], None]] = None) -> dict:
    """Evaluate every image of a split; returns a JSON-ready dict.

    Returns:
        dict with ``localization`` (the number the reference prints: MaxBoxAcc or
        MaxBoxAccV2 per ``multi_contour_eval`` / ``multi_iou_eval``, or PxAP for
        masks), ``metrics`` (``MaxBoxAcc``, ``MaxBoxAcc@<iou>``, ``MaxBoxAccV2``,
        ``MaxBoxAccV2@<iou>``, ``best_thr``, ``Top1Loc``, ``Top5Loc`` (+
        ``@best_thr``), ``Top1Cls``, ``Top5Cls``, ``PxAP``, those that apply;
        IoU as a fraction, e.g. ``@0.3``), ``num_images`` and the settings.
        With ``analysis_dir``, :func:`.wsol_analysis.write_analysis` also writes
        ``curves.json`` there (and, with ``predictions``, the per-class table and
        the failure breakdown, with the names of
        ``<metadata_root>/<dataset_name>/class_names.txt`` when it exists);
        ``result['analysis']`` lists the files, and the per-image file
        ``per_image.jsonl`` (:mod:`.per_image_results`, boxes at the MaxBoxAcc
        threshold) is written there too.
        ``size``: the side of the maps (the run's evaluation size; the reference: 224).
        Top-5 metrics are left out (``result['top5_na']``) when the predictions are
        top-k lines with fewer than 5 classes on some line: Top-5 cannot be known
        then; score vectors give the top min(5, K) classes, as WSOLMetric does.
    """
    if dataset_name not in DATASET_NAMES:
        raise ValueError(f'dataset_name must be one of {DATASET_NAMES}, got {dataset_name!r}')
    iou_list = [int(t) for t in iou_threshold_list]
    if not iou_list or any(not 0 < t <= 100 for t in iou_list):
        raise ValueError(f'iou_threshold_list must hold percentages in (0, 100], got {iou_list}')
    if not multi_iou_eval and 50 not in iou_list and dataset_name != 'OpenImages':
        raise ValueError('without --multi_iou_eval the reported number is at IoU 50, '
                         f'which is not in --iou_threshold_list {iou_list}')
    # IoU 50 is always evaluated: MaxBoxAcc and Top-k Loc use it
    iou_pcts = sorted(set(iou_list) | {50})
    iou_thrs = [t / 100 for t in iou_pcts]      # the reference compares iou >= t / 100
    thresholds = cam_thresholds(cam_curve_interval)
    split_dir = split_metadata_dir(metadata_root, dataset_name, split)
    infos = read_wsol_split(split_dir, require_sizes=False)
    img_ids = [info['img_id'] for info in infos]
    if not any('ori_gt_bboxes' in i or 'mask_paths' in i for i in infos):
        raise ScoremapError(f'{split_dir}: no localization.txt with boxes or masks')
    top5, ignored = (read_predictions(predictions, img_ids, predictions_format)
                     if predictions else (None, 0))
    top5_na = top5 is not None and _short_topk_lines(predictions, predictions_format)
    mask_dir = osp.join(mask_root, dataset_name)
    if not osp.isdir(mask_dir):
        mask_dir = mask_root
    side = int(size)
    size = (side, side)
    box_thrs = thresholds if analysis_dir is not None else None

    def one(i: int) -> dict:
        info = infos[i]
        cam = load_scoremap(scoremap_path(scoremap_root, info['img_id']), info['img_id'],
                            resize=resize, size=side)
        boxes = fg = ignore = None
        if 'ori_gt_bboxes' in info:
            boxes = rescale_boxes(info['ori_gt_bboxes'], info['meta_size'], size)
        if 'mask_paths' in info:
            fg = np.any([load_mask(osp.join(mask_dir, p), side)
                         for p in info['mask_paths']], 0)
            if info.get('ignore_path'):
                ignore = load_mask(osp.join(mask_dir, info['ignore_path']), side) & ~fg
        try:
            record = evaluate_image(cam, boxes, thresholds=thresholds, iou_thrs=iou_thrs,
                                    eval_size=size, gt_mask=fg, ignore_mask=ignore,
                                    normalize=resize, box_thresholds=box_thrs)
        except ValueError as err:
            raise ScoremapError(f'image {info["img_id"]!r}: {err}') from err
        if top5 is not None:
            record['top5'] = top5[info['img_id']]
            record['label'] = info['gt_label']
        if analysis_dir is not None:
            record['img_id'] = info['img_id']
        return record

    component_tree.warm_up()   # load (or compile) the sweep before the progress bar starts
    if on_start is not None:
        on_start(len(infos))
    records = map_in_threads(one, len(infos), workers, progress=progress)
    metrics = summarize_records(records, thresholds, iou_thrs, prefix=None)
    if top5_na:
        metrics = {k: v for k, v in metrics.items() if not k.startswith('Top5')}
    result = dict(dataset_name=dataset_name, split=split, num_images=len(records),
                  cam_curve_interval=cam_curve_interval, iou_threshold_list=iou_list,
                  multi_contour_eval=bool(multi_contour_eval),
                  multi_iou_eval=bool(multi_iou_eval), resize_scoremaps=bool(resize),
                  predictions_ignored=ignored, eval_size=side, top5_na=bool(top5_na))
    box_recs = [r for r in records if 'hits' in r]
    if box_recs:
        acc = box_accuracies(box_recs, len(iou_thrs), len(thresholds)).max(2)   # (2, I)
        for variant, name in ((0, 'MaxBoxAcc'), (1, 'MaxBoxAccV2')):
            for t, a in zip(iou_thrs, acc[variant]):
                metrics[f'{name}@{t:g}'] = float(a)
        per_iou = {v: [acc[v, iou_pcts.index(t)] for t in iou_list] for v in (0, 1)}
        # V2 is the mean over the IoUs asked for (np.average, as the reference)
        metrics['MaxBoxAccV2'] = float(np.average(per_iou[1]))
        chosen = per_iou[1 if multi_contour_eval else 0]
        result['localization'] = float(np.average(chosen) if multi_iou_eval
                                       else chosen[iou_list.index(50)])
    if 'PxAP' in metrics and (dataset_name == 'OpenImages' or not box_recs):
        result['localization'] = metrics['PxAP']
    result['metrics'] = metrics
    if analysis_dir is not None:
        # class names for the per-class table, when the metadata has them (ours)
        names_files = [f for f in (osp.join(metadata_root, dataset_name, 'class_names.txt'),
                                   osp.join(metadata_root, 'class_names.txt'))
                       if osp.isfile(f)]
        names = read_class_names(names_files[0]) if names_files else None
        result['analysis'] = write_analysis(analysis_dir, records, thresholds, iou_thrs, 0.5,
                                            class_names=names)
        if 'best_thr' in metrics:
            from .per_image_results import per_image_lines, write_per_image_results
            from .wsol_records import threshold_index
            thr = metrics['best_thr']
            path = osp.join(analysis_dir, 'per_image.jsonl')
            write_per_image_results(path, per_image_lines(
                records, thresholds, iou_thrs, 0.5, threshold_index(thresholds, thr)),
                thr, 'best', 0.5, names)
            result['analysis']['per_image'] = path
    return result
