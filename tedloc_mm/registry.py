"""Registries of tedloc_mm (scope ``'tedloc'``), children of MMPretrain's.

A config with ``default_scope = 'tedloc'`` builds our components and, through the
parent chain, MMPretrain's, MMCV's and MMEngine's by bare name. A config of another
project (``default_scope='mmpretrain'`` or ``'mmseg'``) builds ours as
``type='tedloc.Name'`` after ``custom_imports = dict(imports=['tedloc_mm'])``.
"""
from typing import Any

from mmengine.registry import DefaultScope, Registry
from mmpretrain import registry as mmpretrain_registry

SCOPE = 'tedloc'


def _child(parent: Registry, *locations: str) -> Registry:
    """A ``'tedloc'`` registry under MMPretrain's ``parent``, also reachable from the root.

    Why it writes MMEngine's ``_children``: ``Registry.get('tedloc.X')`` from another
    scope looks only among the root's direct children, so our MMPretrain-child
    registries (whose parent chain resolves MMPretrain's bare names in our configs)
    must also be listed there for an ``'mmseg'`` config to find them.
    """
    registry = Registry(parent.name, parent=parent, scope=SCOPE, locations=list(locations))
    root = parent._get_root_registry()
    root._children.setdefault(SCOPE, registry)
    return registry


def component_class(registry: Registry, type_: Any) -> Any:
    """The class a config's ``type`` names (``'X'``, ``'tedloc.X'``, ``'mmpretrain.X'``
    or the class itself) as one of our registries resolves it, whatever the caller's
    scope; None when no registry knows it. Code that looks for a component in a config
    compares classes, not spellings."""
    if not isinstance(type_, str):
        return type_
    return registry.get(type_)


def build(registry: Registry, cfg: Any, **kwargs) -> Any:
    """``registry.build(cfg)`` in our scope, whatever the caller's default scope.

    Our components build their nested parts with it (a TeD-Loc's backbone, a dataset's
    transforms, ...): a bare name then resolves among ours and, through the parent
    chain, MMPretrain's, MMCV's and MMEngine's, also when the config that named our
    component is in the ``'mmpretrain'`` or ``'mmseg'`` scope. A type that no registry
    knows is a ``KeyError`` naming it, the scope searched and the fixes.
    """
    with DefaultScope.overwrite_default_scope(SCOPE):
        try:
            return registry.build(cfg, **kwargs)
        except KeyError as err:
            type_ = cfg.get('type') if isinstance(cfg, dict) else None
            if not isinstance(type_, str) or 'registry' not in str(err) or \
                    registry.get(type_) is not None:
                raise
            raise KeyError(
                f'{type_!r} is not a component of the {registry.name!r} registry in scope '
                f'{SCOPE!r} (searched: ours, then MMPretrain\'s, MMEngine\'s). A component '
                "of another library: name it with that library's scope prefix, e.g. "
                f"'mmseg.{type_.split('.')[-1]}', and import it with custom_imports; "
                'a tedloc_mm component used from another scope\'s config: add '
                "custom_imports=dict(imports=['tedloc_mm']) and the 'tedloc.' prefix; "
                'otherwise check the spelling') from None


RUNNERS = _child(mmpretrain_registry.RUNNERS, 'tedloc_mm.engine')
RUNNER_CONSTRUCTORS = _child(mmpretrain_registry.RUNNER_CONSTRUCTORS, 'tedloc_mm.engine')
LOOPS = _child(mmpretrain_registry.LOOPS, 'tedloc_mm.engine')
HOOKS = _child(mmpretrain_registry.HOOKS, 'tedloc_mm.engine', 'tedloc_mm.visualization',
               'tedloc_mm.analysis.curves_hook')
LOG_PROCESSORS = _child(mmpretrain_registry.LOG_PROCESSORS, 'tedloc_mm.engine')
OPTIMIZERS = _child(mmpretrain_registry.OPTIMIZERS, 'tedloc_mm.engine')
OPTIM_WRAPPERS = _child(mmpretrain_registry.OPTIM_WRAPPERS, 'tedloc_mm.engine')
OPTIM_WRAPPER_CONSTRUCTORS = _child(mmpretrain_registry.OPTIM_WRAPPER_CONSTRUCTORS,
                                    'tedloc_mm.engine')
PARAM_SCHEDULERS = _child(mmpretrain_registry.PARAM_SCHEDULERS, 'tedloc_mm.engine')
DATASETS = _child(mmpretrain_registry.DATASETS, 'tedloc_mm.datasets',
                  'tedloc_mm.datasets.seg_export_dataset')
DATA_SAMPLERS = _child(mmpretrain_registry.DATA_SAMPLERS, 'tedloc_mm.datasets')
TRANSFORMS = _child(mmpretrain_registry.TRANSFORMS, 'tedloc_mm.datasets')
MODELS = _child(mmpretrain_registry.MODELS, 'tedloc_mm.models')
MODEL_WRAPPERS = _child(mmpretrain_registry.MODEL_WRAPPERS, 'tedloc_mm.models')
WEIGHT_INITIALIZERS = _child(mmpretrain_registry.WEIGHT_INITIALIZERS, 'tedloc_mm.models')
BATCH_AUGMENTS = _child(mmpretrain_registry.BATCH_AUGMENTS, 'tedloc_mm.models')
TASK_UTILS = _child(mmpretrain_registry.TASK_UTILS, 'tedloc_mm.models')
METRICS = _child(mmpretrain_registry.METRICS, 'tedloc_mm.evaluation.wsol_metric',
                 'tedloc_mm.evaluation.seg_metric')
EVALUATORS = _child(mmpretrain_registry.EVALUATORS, 'tedloc_mm.evaluation.wsol_metric')
VISUALIZERS = _child(mmpretrain_registry.VISUALIZERS, 'tedloc_mm.visualization')
VISBACKENDS = _child(mmpretrain_registry.VISBACKENDS, 'tedloc_mm.visualization')
