"""Where the CAM threshold of an inference box comes from.

The WSOL protocol picks the CAM threshold of MaxBoxAcc on the validation split
(``WSOLMetric`` reports it as ``wsol/best_thr``). At inference the box of a map is
drawn at that threshold, read from, in this order of precedence:

1. a number given by the user (in [0, 1));
2. a metrics JSON file written by ``tools/test.py --out`` (or any JSON dict holding
   ``wsol/best_thr``; another prefix ``<p>/best_thr`` is accepted when it is the only
   such key);
3. the message hub of a Runner checkpoint: the last validation before it was saved
   logged ``val/wsol/best_thr`` (for a ``save_best`` checkpoint that is the
   validation that made it the best);
4. :data:`DEFAULT_CAM_THRESHOLD` = 0.5 when none of these is available (then
   ``source`` says so).
"""
import json
import os.path as osp
from typing import Optional, Tuple, Union

from .wsol_records import best_cam_threshold

#: the fallback when no validation threshold is known (docs/en/inference.md)
DEFAULT_CAM_THRESHOLD = 0.5
#: the key WSOLMetric reports (see ``WSOLMetric``'s docstring), without the prefix
BEST_THR_KEY = 'best_thr'


def check_cam_threshold(value, source: str = 'cam_threshold') -> float:
    """``value`` as a float in [0, 1), or a ValueError naming ``source``."""
    try:
        thr = float(value)
    except (TypeError, ValueError):
        raise ValueError(f'{source}: a CAM threshold must be a number, got {value!r}') from None
    if not 0.0 <= thr < 1.0:
        raise ValueError(f'{source}: a CAM threshold must be in [0, 1), got {thr}')
    return thr


def threshold_from_metrics(metrics: dict, source: str) -> float:
    """``wsol/best_thr`` (or the only ``*/best_thr``) of a metric dict."""
    try:
        return check_cam_threshold(best_cam_threshold(metrics), source)
    except KeyError:
        keys = [k for k in metrics if str(k).split('/')[-1] == BEST_THR_KEY]
        if len(keys) == 1:
            return check_cam_threshold(metrics[keys[0]], f'{source}:{keys[0]}')
        raise KeyError(f'{source}: no "wsol/{BEST_THR_KEY}" among its keys '
                       f'{sorted(map(str, metrics))[:20]} (write it with tools/test.py '
                       f'--out, whose WSOLMetric reports it)') from None


def threshold_from_metrics_file(path: str) -> float:
    """The best CAM threshold of a metrics JSON file (``tools/test.py --out``)."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'metrics file not found: {path}')
    with open(path) as f:
        try:
            metrics = json.load(f)
        except json.JSONDecodeError as err:
            raise ValueError(f'{path}: not a JSON file ({err})') from None
    if not isinstance(metrics, dict):
        raise ValueError(f'{path}: expected a JSON object of metrics')
    return threshold_from_metrics(metrics, path)


def threshold_from_checkpoint(checkpoint: dict) -> Optional[float]:
    """``val/wsol/best_thr`` (latest value) from a Runner checkpoint's message hub,
    or ``meta['cam_threshold']``; None when the checkpoint records neither."""
    meta = checkpoint.get('meta') or {}
    if 'cam_threshold' in meta:
        return check_cam_threshold(meta['cam_threshold'], "checkpoint meta['cam_threshold']")
    hub = checkpoint.get('message_hub') or {}
    scalars = hub.get('log_scalars') or {}
    for key in (f'val/wsol/{BEST_THR_KEY}', f'test/wsol/{BEST_THR_KEY}'):
        buf = scalars.get(key)
        if buf is not None:
            # an mmengine HistoryBuffer; current() is the latest value
            value = buf.current() if hasattr(buf, 'current') else buf
            return check_cam_threshold(value, f'checkpoint message hub {key}')
    return None


def resolve_cam_threshold(cam_threshold: Union[None, float, str],
                          checkpoint: Optional[dict] = None) -> Tuple[float, str]:
    """(threshold, where it came from) following the precedence of the module doc.

    Args:
        cam_threshold: a number, a path to a metrics JSON file, or None.
        checkpoint: the loaded checkpoint dict (for its message hub), or None.
    """
    if isinstance(cam_threshold, str):
        if cam_threshold.lower().endswith('.json') or osp.isfile(cam_threshold):
            return threshold_from_metrics_file(cam_threshold), f'metrics file {cam_threshold}'
        return check_cam_threshold(cam_threshold), 'given'
    if cam_threshold is not None:
        return check_cam_threshold(cam_threshold), 'given'
    if checkpoint is not None:
        thr = threshold_from_checkpoint(checkpoint)
        if thr is not None:
            return thr, 'checkpoint (last validation)'
    return DEFAULT_CAM_THRESHOLD, 'default (no validation threshold given)'
