"""Write the maps a metric scored as a folder any WSOL evaluator reads.

The layout is ``clovaai/wsolevaluation``'s (its ``evaluation.py`` loads
``<scoremap_root>/<image_id>.npy`` and evaluates the map as float64 in [0, 1]), read
back by ``tools/analysis_tools/eval_scoremaps.py``::

    <dir>/<image_id>.npy     float32 (H, W) in [0, 1], min-max normalised, at the
                             run's evaluation size (the map WSOLMetric scored)
    <dir>/predictions.txt    <image_id>,<s_0>,...,<s_K-1>: the full class-score vector
                             (``repr`` of each float32 score: read back exactly)
    <dir>/scoremaps.json     the settings to evaluate them with (evaluation size, CAM
                             threshold step, IoU list), the run's metrics and the
                             eval_scoremaps.py command that reproduces them

Image ids are the dataset's ``img_id`` (the metadata's relative path, kept whole:
``images/val/x.png`` -> ``images/val/x.png.npy``).
"""
import json
import os
import os.path as osp
from typing import List, Optional, Sequence

import numpy as np

from .scoremap_dir import scoremap_path

#: names of the files next to the maps
PREDICTIONS_FILE = 'predictions.txt'
META_FILE = 'scoremaps.json'


def checked_image_id(img_id: str) -> str:
    """``img_id`` if it is a relative path inside the folder, else ValueError (an
    absolute path or ``..`` would write outside the folder)."""
    img_id = str(img_id)
    parts = img_id.replace('\\', '/').split('/')
    if not img_id or osp.isabs(img_id) or '..' in parts:
        raise ValueError(f'scoremap_dir needs relative image ids (the metadata\'s '
                         f'paths), got {img_id!r}')
    return img_id


def save_scoremap(root: str, img_id: str, map32: np.ndarray) -> str:
    """Write one map (float32 (H, W)) as ``<root>/<img_id>.npy``; returns the path."""
    path = scoremap_path(root, checked_image_id(img_id))
    os.makedirs(osp.dirname(path) or '.', exist_ok=True)
    np.save(path, np.asarray(map32, dtype=np.float32))
    return path


def write_predictions(path: str, img_ids: Sequence[str], scores: Sequence[np.ndarray]
                      ) -> None:
    """One ``<image_id>,<s_0>,...,<s_K-1>`` line per image; each score is written as
    ``repr(float(s))``, which reads back to the same float64 (and float32) value, so
    that the top-5 classes (:func:`.wsol_records.top5_classes`, ties to the lower
    class) come out as the metric's."""
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path, 'w', encoding='utf-8') as f:
        for img_id, score in zip(img_ids, scores):
            f.write(img_id + ',' + ','.join(repr(float(s)) for s in np.ravel(score)) + '\n')


def evaluate_command(root: str, eval_size: Optional[Sequence[int]], interval: float,
                     iou_pcts: List[int], predictions: bool) -> str:
    """The eval_scoremaps.py command that reproduces the run's numbers from ``root``."""
    cmd = ['python tools/analysis_tools/eval_scoremaps.py', f'--scoremap_root {root}',
           '--metadata_root <data_root>/metadata', '--mask_root <data_root>',
           '--dataset_name CUB', '--split <split>', f'--cam_curve_interval {interval:g}',
           '--iou_threshold_list ' + ' '.join(str(p) for p in iou_pcts)]
    if eval_size is not None:
        cmd.append(f'--eval_size {eval_size[0]}')
    if predictions:
        cmd.append(f'--predictions {osp.join(root, PREDICTIONS_FILE)}')
    return ' '.join(cmd)


def write_meta(root: str, *, sizes: Sequence[Sequence[int]], interval: float,
               iou_thrs: Sequence[float], loc_iou: float, num_images: int,
               metrics: dict, predictions: bool) -> str:
    """``<root>/scoremaps.json`` (see the module doc); returns its path."""
    sizes = sorted({tuple(int(v) for v in s) for s in sizes})
    eval_size = list(sizes[0]) if len(sizes) == 1 else None
    iou_pcts = [int(round(t * 100)) for t in iou_thrs]
    meta = dict(
        format='one float32 .npy per image id, min-max normalised to [0, 1], at eval_size',
        eval_size=eval_size, map_sizes=[list(s) for s in sizes],
        cam_curve_interval=interval, iou_threshold_list=iou_pcts, loc_iou=loc_iou,
        num_images=num_images, predictions=PREDICTIONS_FILE if predictions else None,
        metrics=metrics,
        evaluate=evaluate_command(root, eval_size, interval, iou_pcts, predictions))
    path = osp.join(root, META_FILE)
    with open(path, 'w', encoding='utf-8') as f:
        json.dump(meta, f, indent=2)
    return path
