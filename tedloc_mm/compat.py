"""Workarounds for running the 2023-2025 OpenMMLab releases on torch 2.13 / NumPy 2.

Importing tedloc_mm patches nothing and imports neither torch nor any OpenMMLab
library: :func:`install` (called by ``tedloc_mm/__init__.py``) only registers import
hooks, so that each workaround acts at the moment the library it repairs is first
imported, by anyone, and only where that library needs it:

=====================  =========================================  ==========================
workaround             when                                       acts only if
=====================  =========================================  ==========================
torchvision_ops        right before ``torchvision`` runs          its ``_C.so`` cannot load
mmcv_ops               ``import mmcv.ops`` gets a stand-in        MMCV has no ``mmcv._ext``
checkpoint_loading     right after ``mmengine.runner.checkpoint``  torch >= 2.6
cpu_distributed_init   right after ``mmengine.dist.utils``         CUDA is absent
=====================  =========================================  ==========================

A library already imported when tedloc_mm is imported is patched at once (too late
for torchvision: its import has then either failed or not needed us). Each
workaround

* says what breaks without it,
* checks the environment first and does nothing where it is already fine,
* is idempotent (safe to apply twice) and reports whether it acted in
  :data:`APPLIED` (``tests/test_package/test_compat.py`` measures, in a fresh interpreter, which
  ones this environment needs).

:func:`apply_all` applies all of them now (it imports torch, MMEngine and MMCV).
"""
import importlib.abc
import importlib.machinery
import importlib.util
import os.path as osp
import sys
import types
import warnings
from typing import Callable, Dict, Optional

#: name of each workaround -> True if it changed something in this process (a name is
#: absent until the library it repairs has been imported).
APPLIED: Dict[str, bool] = {}


# --------------------------------------------------------------------------- #
# 1. torchvision's compiled ops
# --------------------------------------------------------------------------- #
TORCHVISION_OPS_MESSAGE = (
    'torchvision::{name} is unavailable: the installed torchvision wheel was built '
    'for CUDA and its compiled ops (_C.so) cannot load with this CPU build of '
    'torch. Nothing in tedloc_mm needs them; install a torchvision whose build '
    'matches torch if you do.')


def _torchvision_ops_stub(name):

    def _raise(*args, **kwargs):
        raise RuntimeError(TORCHVISION_OPS_MESSAGE.format(name=name))

    return _raise


def patch_torchvision_ops(importing: bool = False) -> bool:
    """Declare ``torchvision::nms`` / ``qnms`` when torchvision's ``_C.so`` cannot load.

    Breaks without it: the registry's torchvision 0.28.0 wheel is a CUDA build; with
    the CPU torch 2.13 wheel its ``_C.so`` fails to load, and ``import torchvision``
    then dies in ``torchvision/_meta_registrations.py`` with ``operator
    torchvision::nms does not exist`` -- and so do open_clip, timm and
    ``mmpretrain.models``, which import it. Declaring the two schemas that module
    registers fake kernels for lets the import succeed; transforms and models work,
    and calling a C op raises a clear error instead. ``importing``: called by the
    import hook while ``torchvision`` is being imported (it is then in ``sys.modules``).
    """
    import torch

    if 'torchvision' in sys.modules and not importing:
        return False  # already imported (successfully): nothing to do
    spec = importlib.util.find_spec('torchvision')
    if spec is None or not spec.submodule_search_locations:
        return False
    so_path = osp.join(list(spec.submodule_search_locations)[0], '_C.so')
    if not osp.exists(so_path):
        return False
    try:
        torch.ops.load_library(so_path)
        return False  # the compiled ops load: the environment is fine
    except (OSError, RuntimeError):
        pass
    if _torch_op_exists('torchvision', 'nms'):
        return False
    lib = torch.library.Library('torchvision', 'DEF')
    for name in ('nms', 'qnms'):
        lib.define(f'{name}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor')
        lib.impl(name, _torchvision_ops_stub(name), 'CompositeExplicitAutograd')
    # keep the Library object alive for the lifetime of the process
    _KEEP_ALIVE.append(lib)
    return True


_KEEP_ALIVE = []


def _torch_op_exists(namespace: str, name: str) -> bool:
    import torch
    try:
        getattr(getattr(torch.ops, namespace), name)
        return True
    except (AttributeError, RuntimeError):
        return False


# --------------------------------------------------------------------------- #
# 2. mmcv.ops under mmcv-lite
# --------------------------------------------------------------------------- #
MMCV_OPS_MESSAGE = (
    'mmcv.ops.{name} needs the compiled MMCV ops, but the installed MMCV has none '
    '(mmcv-lite, as pinned by tedloc_mm). Nothing in tedloc_mm needs them; install '
    'a full MMCV build if your model does.')


class _MissingMMCVOp:
    """Stands in for a compiled MMCV op: importable, raises a clear error when used."""

    def __init__(self, name):
        self._name = name

    def __call__(self, *args, **kwargs):
        raise RuntimeError(MMCV_OPS_MESSAGE.format(name=self._name))

    def __repr__(self):
        return f'<unavailable mmcv.ops.{self._name}>'


def mmcv_ops_needs_stand_in() -> bool:
    """True where MMCV is installed without its compiled extension (mmcv-lite)."""
    return (importlib.util.find_spec('mmcv') is not None
            and importlib.util.find_spec('mmcv._ext') is None)


def build_mmcv_ops_stand_in() -> types.ModuleType:
    """The stand-in ``mmcv.ops`` package (see :func:`patch_mmcv_ops`)."""
    import mmcv

    ops = types.ModuleType('mmcv.ops')
    ops.__doc__ = 'tedloc_mm stand-in for mmcv.ops (mmcv-lite has no compiled ops).'
    ops.__path__ = []  # a package, so that `mmcv.ops.x` submodule lookups fail cleanly

    def _getattr(name):
        if name.startswith('__'):
            raise AttributeError(name)
        return _MissingMMCVOp(name)

    ops.__getattr__ = _getattr
    ps_file = osp.join(osp.dirname(mmcv.__file__), 'ops', 'point_sample.py')
    if osp.exists(ps_file):
        spec = importlib.util.spec_from_file_location('mmcv.ops.point_sample', ps_file)
        ps_module = importlib.util.module_from_spec(spec)
        sys.modules['mmcv.ops.point_sample'] = ps_module
        spec.loader.exec_module(ps_module)
        ops.point_sample = ps_module.point_sample
        ops.bilinear_grid_sample = ps_module.bilinear_grid_sample
    return ops


def patch_mmcv_ops() -> bool:
    """Provide an ``mmcv.ops`` module when MMCV has no compiled extension.

    Breaks without it: with mmcv-lite (MMSegmentation 1.2.2 refuses mmcv >= 2.2 and
    a full MMCV 2.1 build needs a 20-30 min compile), ``import mmcv.ops`` fails, and
    ``mmseg.models``, ``mmseg.datasets``, ``mmseg.apis`` and ``mmseg.visualization``
    die on their unguarded ``from mmcv.ops import point_sample /
    sigmoid_focal_loss``. The stand-in module's ``point_sample`` is MMCV's own
    pure-PyTorch implementation (loaded from ``mmcv/ops/point_sample.py``, which
    needs no extension); every other name is an object that raises a clear error
    when called.
    """
    if 'mmcv.ops' in sys.modules or not mmcv_ops_needs_stand_in():
        return False
    import mmcv
    ops = build_mmcv_ops_stand_in()
    sys.modules['mmcv.ops'] = ops
    mmcv.ops = ops
    return True


class _MMCVOpsStandInLoader(importlib.abc.Loader):
    """Loads the stand-in as ``mmcv.ops`` (the import hook's replacement)."""

    def create_module(self, spec):
        return build_mmcv_ops_stand_in()

    def exec_module(self, module):
        pass


# --------------------------------------------------------------------------- #
# 3. Runner checkpoints under torch.load(weights_only=True)
# --------------------------------------------------------------------------- #
def patch_checkpoint_loading() -> bool:
    """Re-register MMEngine's local-file checkpoint loader.

    Breaks without it: torch >= 2.6 defaults ``torch.load`` to
    ``weights_only=True``; MMEngine 0.10.7 calls ``torch.load`` without the
    argument, so a Runner checkpoint (``iter_N.pth``/``epoch_N.pth``) fails with
    ``UnpicklingError: Weights only load failed`` in ``--resume``, ``load_from``
    and ``tools/test.py``. The replacement stays ``weights_only=True`` (it adds the
    Runner's globals only inside its own reads), so registering it process-wide does
    not weaken torch's safe loading for other MMEngine users. The loader itself, its
    allowlist and its errors: :mod:`tedloc_mm.fileio.checkpoint`.
    """
    import torch
    from mmengine.runner.checkpoint import CheckpointLoader
    from mmengine.utils import digit_version

    from tedloc_mm.fileio.checkpoint import load_local_checkpoint

    if digit_version(torch.__version__) < digit_version('2.6.0'):
        return False
    current = CheckpointLoader._schemes.get('')
    if current is load_local_checkpoint:
        return False
    CheckpointLoader.register_scheme(prefixes='', force=True)(load_local_checkpoint)
    return True


# --------------------------------------------------------------------------- #
# 4. torchrun on CPU-only machines
# --------------------------------------------------------------------------- #
def patch_cpu_distributed_init() -> bool:
    """Let MMEngine's ``pytorch`` launcher start on machines without CUDA.

    Breaks without it: ``mmengine.dist.init_dist('pytorch')`` calls
    ``torch.cuda.set_device(local_rank)`` unconditionally; torch 2.13's CPU build has
    no ``torch._C._cuda_setDevice``, so every process of ``tools/dist_train.sh`` /
    ``dist_test.sh`` dies with ``AttributeError`` before the process group exists.
    On a machine without CUDA the replacement skips ``set_device`` and uses ``gloo``
    (``nccl`` needs GPUs); with CUDA, nothing is changed.
    """
    import torch
    from mmengine.dist import utils as dist_utils

    if torch.cuda.is_available():
        return False
    original = dist_utils._init_dist_pytorch
    if getattr(original, '_tedloc_cpu', False):
        return False

    def _init_dist_pytorch_cpu(backend='gloo', init_backend='torch', **kwargs):
        if init_backend != 'torch':
            return original(backend, init_backend=init_backend, **kwargs)
        torch.distributed.init_process_group(
            backend='gloo' if backend == 'nccl' else backend, **kwargs)

    _init_dist_pytorch_cpu._tedloc_cpu = True
    dist_utils._init_dist_pytorch = _init_dist_pytorch_cpu
    return True


def _silence_mmcv_lite_warning() -> None:
    # mmcv-lite warns at every import that it has no MultiScaleDeformableAttention;
    # nothing here uses it, so that one message is silenced.
    warnings.filterwarnings('ignore', message='Fail to import ``MultiScaleDeformableAttention``')


def _record(name: str, fn: Callable[[], bool]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        acted = fn()
    APPLIED[name] = APPLIED.get(name, False) or acted


_PATCHES = (('torchvision_ops', patch_torchvision_ops),
            ('mmcv_ops', patch_mmcv_ops),
            ('checkpoint_loading', patch_checkpoint_loading),
            ('cpu_distributed_init', patch_cpu_distributed_init))


def apply_all() -> Dict[str, bool]:
    """Apply every workaround now (idempotent); return and record which ones acted."""
    _silence_mmcv_lite_warning()
    for name, fn in _PATCHES:
        _record(name, fn)
    return dict(APPLIED)


# --------------------------------------------------------------------------- #
# When each workaround acts: import hooks
# --------------------------------------------------------------------------- #
class _HookedLoader(importlib.abc.Loader):
    """A module's own loader, with ``before()`` / ``after()`` around its code."""

    def __init__(self, loader, before: Optional[Callable] = None,
                 after: Optional[Callable] = None):
        self._loader, self._before, self._after = loader, before, after

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        if self._before is not None:
            self._before()
        self._loader.exec_module(module)
        if self._after is not None:
            self._after()

    def __getattr__(self, name):  # get_code, is_package, get_resource_reader, ...
        return getattr(self._loader, name)


class ImportHooks(importlib.abc.MetaPathFinder):
    """Runs a workaround when a named module is first imported, once.

    For each pending module name: ``before`` runs right before the module's own code
    (the module is found by the other finders, unchanged), ``after`` right after it,
    and ``replace`` may return a module spec of its own instead (the ``mmcv.ops``
    stand-in). A hook is dropped once its module has been looked up.
    """

    def __init__(self):
        self.pending: Dict[str, tuple] = {}

    def find_spec(self, fullname, path=None, target=None):
        hook = self.pending.pop(fullname, None)
        if hook is None:
            return None
        before, after, replace = hook
        if replace is not None:
            spec = replace(fullname)
            if spec is not None:
                return spec
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, 'find_spec'):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and (before or after):
                    spec.loader = _HookedLoader(spec.loader, before, after)
                return spec
        return None


def _mmcv_ops_spec(fullname):
    _silence_mmcv_lite_warning()
    need = mmcv_ops_needs_stand_in()
    APPLIED['mmcv_ops'] = APPLIED.get('mmcv_ops', False) or need
    if not need:
        return None
    return importlib.util.spec_from_loader(fullname, _MMCVOpsStandInLoader(),
                                           is_package=True)


def install() -> ImportHooks:
    """Register the import hooks (once per process); patch what is already imported.

    Cheap: imports nothing. Returns the hooks object (its ``pending`` names are the
    libraries not imported yet).
    """
    for finder in sys.meta_path:
        if isinstance(finder, ImportHooks):
            return finder
    _silence_mmcv_lite_warning()
    hooks = ImportHooks()
    if 'torchvision' not in sys.modules:
        hooks.pending['torchvision'] = (
            lambda: _record('torchvision_ops', lambda: patch_torchvision_ops(True)),
            None, None)
    if 'mmcv.ops' not in sys.modules:
        hooks.pending['mmcv.ops'] = (None, None, _mmcv_ops_spec)
    for name, module in (('checkpoint_loading', 'mmengine.runner.checkpoint'),
                         ('cpu_distributed_init', 'mmengine.dist.utils')):
        fn = dict(_PATCHES)[name]
        if module in sys.modules:
            _record(name, fn)
        else:
            hooks.pending[module] = (None, lambda name=name, fn=fn: _record(name, fn), None)
    sys.meta_path.insert(0, hooks)
    return hooks
