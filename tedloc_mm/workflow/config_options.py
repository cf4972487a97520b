"""``--cfg-options`` that name what they set, never a list position.

MMEngine's ``--cfg-options`` reach into a list only by index (``custom_hooks.0.out_dir``):
a config that reorders its list would silently send the value elsewhere. The drivers
name the item instead (a hook by its type, a scheduler by what it spans, a transform by
its type); these functions find it in the loaded config and return the option, or fail
naming the config and what is missing or ambiguous.
"""
from typing import Any, Dict, List, Optional

__all__ = ['ConfigOptionError', 'hook_options', 'schedule_options', 'transform_options',
           'evaluator_options', 'find_by_type', 'config_values']


class ConfigOptionError(ValueError):
    """The config has no item (or several) of the named kind."""


def _type_name(item) -> str:
    t = item.get('type') if hasattr(item, 'get') else None
    t = t if isinstance(t, str) else getattr(t, '__name__', str(t))
    return t.rsplit('.', 1)[-1]  # 'tedloc.WSOLVisualizationHook' -> 'WSOLVisualizationHook'


def find_by_type(items, type_name: str, where: str) -> int:
    """Index of the one item of list ``items`` whose ``type`` is ``type_name`` (with or
    without a scope prefix); ``where`` names the list in the error."""
    hits = [i for i, item in enumerate(items or []) if _type_name(item) == type_name]
    if len(hits) != 1:
        found = [_type_name(item) for item in items or []]
        raise ConfigOptionError(f'{where}: expected one {type_name}, found {len(hits)} '
                                f'(the list holds {found})')
    return hits[0]


def _fmt(value: Any) -> str:
    return str(value)


def hook_options(cfg, type_name: str, **values) -> List[str]:
    """Options setting ``values`` on the hook of type ``type_name``, wherever the config
    puts it: a ``default_hooks`` entry (by its key) or a ``custom_hooks`` item (its
    position looked up by type)."""
    for key, hook in (cfg.get('default_hooks') or {}).items():
        if hook is not None and _type_name(hook) == type_name:
            return [f'default_hooks.{key}.{k}={_fmt(v)}' for k, v in values.items()]
    i = find_by_type(cfg.get('custom_hooks'), type_name,
                     f'{cfg.filename}: default_hooks and custom_hooks')
    return [f'custom_hooks.{i}.{k}={_fmt(v)}' for k, v in values.items()]


def schedule_options(cfg, max_iters: int, val_interval: int,
                     val_begin: Optional[int]) -> List[str]:
    """Options of an iteration-based schedule of ``max_iters`` iterations validated every
    ``val_interval`` (from ``val_begin`` on; None: the config's own ``val_begin``):
    ``train_cfg``, the checkpoint interval, and the
    ``end`` of every parameter scheduler that spans the config's whole run (``end`` equal
    to its ``train_cfg.max_iters``), found by that, not by position. A shorter scheduler
    (a warm-up) stays as it is; one that would end after ``max_iters`` is an error."""
    old = cfg.train_cfg.get('max_iters')
    if old is None:
        raise ConfigOptionError(f'{cfg.filename}: train_cfg has no max_iters (an '
                                'iteration-based schedule is expected)')
    opts = [f'train_cfg.max_iters={max_iters}', f'train_cfg.val_interval={val_interval}',
            *([] if val_begin is None else [f'train_cfg.val_begin={val_begin}']),
            f'default_hooks.checkpoint.interval={val_interval}']
    schedulers = cfg.get('param_scheduler') or []
    if isinstance(schedulers, dict):
        schedulers = [schedulers]
    for i, s in enumerate(schedulers):
        if s.get('end') == old and not s.get('by_epoch', True):
            opts.append(f'param_scheduler.{i}.end={max_iters}')
        elif s.get('end') is not None and s['end'] > max_iters:
            raise ConfigOptionError(
                f'{cfg.filename}: param_scheduler {_type_name(s)} ends at {s["end"]}, '
                f'after the {max_iters} iterations asked for, and not at '
                f'train_cfg.max_iters={old}: say how it scales')
    return opts


def transform_options(cfg, loader: str, type_name: str, **values) -> List[str]:
    """Options setting ``values`` on the transform of type ``type_name`` in
    ``LOADER.dataset.pipeline`` (its position looked up by type)."""
    pipeline = cfg[loader].dataset.pipeline
    i = find_by_type(pipeline, type_name, f'{cfg.filename}: {loader}.dataset.pipeline')
    return [f'{loader}.dataset.pipeline.{i}.{k}={_fmt(v)}' for k, v in values.items()]


def evaluator_options(cfg, type_name: str, split: str = 'test', **values) -> List[str]:
    """Options setting ``values`` on the metric of type ``type_name`` of
    ``SPLIT_evaluator`` (a dict, or a list searched by type)."""
    key = f'{split}_evaluator'
    evaluator = cfg[key]
    if isinstance(evaluator, (list, tuple)):
        i = find_by_type(evaluator, type_name, f'{cfg.filename}: {key}')
        prefix = f'{key}.{i}'
    elif _type_name(evaluator) == type_name:
        prefix = key
    else:
        raise ConfigOptionError(f'{cfg.filename}: {key} is {_type_name(evaluator)}, not '
                                f'{type_name}')
    return [f'{prefix}.{k}={_fmt(v)}' for k, v in values.items()]


def config_values(cfg, *keys: str) -> Dict[str, Any]:
    """Top-level values of a config, failing with the config's name when one is absent."""
    missing = [k for k in keys if k not in cfg]
    if missing:
        raise ConfigOptionError(f'{cfg.filename}: no top-level {missing}')
    return {k: cfg[k] for k in keys}
