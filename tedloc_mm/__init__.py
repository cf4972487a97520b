"""tedloc_mm: TeD-Loc weakly supervised object localization as an OpenMMLab plugin.

Importing the package first applies the compatibility workarounds (torch 2.13 /
NumPy 2 with the 2023-2025 OpenMMLab releases, see :mod:`tedloc_mm.compat`), then
imports every submodule so that all components are registered in the ``'tedloc'``
scope.
"""
from . import compat

compat.apply_all()

from mmpretrain.utils import register_all_modules as _register_mmpretrain  # noqa: E402

# Our registries are children of MMPretrain's; its modules must be registered for
# bare names (``ImageClassifier``, ``PackInputs``, ``Accuracy``) to resolve.
_register_mmpretrain(init_default_scope=False)

from .version import __version__  # noqa: E402
from . import registry  # noqa: E402,F401
from . import (apis, datasets, engine, evaluation, models, structures,  # noqa: E402,F401
               pseudo_labels, text, visualization)

__all__ = ['__version__']
