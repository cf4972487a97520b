"""tedloc_mm: TeD-Loc weakly supervised object localization as an OpenMMLab plugin.

Importing the package is cheap: it imports neither torch nor any OpenMMLab library.
It registers the compatibility workarounds as import hooks (:mod:`tedloc_mm.compat`:
each acts when the library it repairs is first imported) and makes the subpackages
available on first use (``tedloc_mm.models``, ...). Components register themselves in
the ``'tedloc'`` scope when a config first names them: the registries of
:mod:`tedloc_mm.registry` import their modules on demand (MMEngine's registry
``locations``); :func:`register_all_modules` imports all of them now.

Layers from the bottom up, each importing only from its own level and those below
(``tests/test_package/test_layers.py`` holds the list): ``fileio`` -> ``compat``,
``structures`` -> ``registry`` -> ``evaluation`` -> ``datasets``, ``embedded_benchmarks``
(the demo's generated data sets) -> ``clip`` -> ``pseudo_labels`` -> ``models`` ->
``engine``, ``visualization`` -> ``analysis``, ``apis`` -> ``workflow`` (the multi-step
drivers' back-ends).
"""
import importlib
import os.path as osp

from . import compat
from .version import __version__

compat.install()

#: the installed configs (``tedloc_mm/configs``; a clone's ``configs/`` links here)
CONFIG_ROOT = osp.join(osp.dirname(osp.abspath(__file__)), 'configs')

_SUBPACKAGES = ('analysis', 'apis', 'clip', 'datasets', 'embedded_benchmarks', 'engine',
                'evaluation', 'fileio', 'models', 'pseudo_labels', 'registry', 'structures',
                'visualization', 'workflow')
#: the subpackages whose modules register components
_REGISTERING = ('analysis.curves_hook', 'datasets', 'datasets.seg_export_dataset', 'engine',
                'evaluation.wsol_metric',
                'evaluation.seg_metric', 'models', 'visualization')


def config_path(name: str) -> str:
    """Absolute path of an installed config, e.g. ``config_path('tedloc_eva-l_cub.py')``,
    for ``_base_`` in a config of another project (see docs/en/get_started.md)."""
    path = osp.join(CONFIG_ROOT, name)
    if not osp.isfile(path):
        raise FileNotFoundError(f'no config {name!r} in {CONFIG_ROOT}')
    return path


def register_all_modules() -> None:
    """Import every module that registers components (they otherwise register on
    first use through the registries' ``locations``)."""
    for name in _REGISTERING:
        importlib.import_module(f'{__name__}.{name}')


def __getattr__(name):
    if name in _SUBPACKAGES:
        return importlib.import_module(f'{__name__}.{name}')
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')


__all__ = ['__version__', 'CONFIG_ROOT', 'config_path', 'register_all_modules']
