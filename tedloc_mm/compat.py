"""Workarounds for running the 2023-2025 OpenMMLab releases on torch 2.13 / NumPy 2.

``tedloc_mm/__init__.py`` calls :func:`apply_all` before anything imports
torchvision, MMSegmentation or open_clip. Each workaround

* says what breaks without it,
* checks the environment first and does nothing where it is already fine,
* is idempotent (safe to apply twice) and reports whether it acted in
  :data:`APPLIED`, which ``tests/test_compat.py`` inspects.

The measured facts behind each one are in ``../shared/STACK.md``.
"""
import importlib.util
import os.path as osp
import sys
import types
import warnings
from typing import Dict

#: name of each workaround -> True if it changed something in this process.
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


def patch_torchvision_ops() -> bool:
    """Declare ``torchvision::nms`` / ``qnms`` when torchvision's ``_C.so`` cannot load.

    Breaks without it: the registry's torchvision 0.28.0 wheel is a CUDA build; with
    the CPU torch 2.13 wheel its ``_C.so`` fails to load, and ``import torchvision``
    then dies in ``torchvision/_meta_registrations.py`` with ``operator
    torchvision::nms does not exist`` -- and so do open_clip, timm and
    ``mmpretrain.models``, which import it. Declaring the two schemas that module
    registers fake kernels for lets the import succeed; transforms and models work,
    and calling a C op raises a clear error instead.
    """
    import torch

    if 'torchvision' in sys.modules:
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
    if 'mmcv.ops' in sys.modules:
        return False
    mmcv_spec = importlib.util.find_spec('mmcv')
    if mmcv_spec is None:
        return False
    if importlib.util.find_spec('mmcv._ext') is not None:
        return False  # full MMCV with compiled ops: leave it alone
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
    sys.modules['mmcv.ops'] = ops
    mmcv.ops = ops
    return True


# --------------------------------------------------------------------------- #
# 3. Runner checkpoints under torch.load(weights_only=True)
# --------------------------------------------------------------------------- #
class CheckpointReadError(RuntimeError):
    """A checkpoint file that cannot be loaded; the message names the file and the
    likely cause (truncated download, wrong format)."""

    def __init__(self, filename: str, reason: str):
        self.filename, self.reason = filename, reason
        super().__init__(f'cannot load checkpoint {filename}: {reason}')

    def __reduce__(self):
        return type(self), (self.filename, self.reason)


class UnsafeCheckpointError(CheckpointReadError):
    """A checkpoint whose pickle needs globals outside the allowlist of
    :mod:`tedloc_mm.utils.safe_checkpoint`: unpickling it could run code. The message
    names the file, the refused globals and the opt-in for a trusted file."""

    def __init__(self, filename: str, refused):
        from tedloc_mm.utils.safe_checkpoint import trust_hint
        self.refused = list(refused)
        reason = (f'refused: unpickling it needs {", ".join(self.refused)}: more than '
                  f'tensors and what MMEngine\'s Runner saves, so it could run code. It '
                  f'was read with torch.load(weights_only=True) and the Runner checkpoint '
                  f'allowlist; nothing in it was executed. {trust_hint(filename)}')
        super().__init__(filename, reason)

    def __reduce__(self):
        return type(self), (self.filename, self.refused)


_CUT = 'an interrupted download or copy? compare its size with the source'


def diagnose_checkpoint(filename: str, error: BaseException = None):
    """Why ``torch.load`` could not read ``filename``, from the file itself; ``None``
    when the file looks like a whole PyTorch checkpoint (the error is then about its
    content, e.g. CUDA tensors on a CPU-only machine)."""
    import zipfile
    size = osp.getsize(filename)
    if size == 0:
        return f'0-byte file ({_CUT})'
    with open(filename, 'rb') as f:
        head = f.read(64)
    if head.startswith(b'PK'):  # torch >= 1.6 saves a zip archive
        try:
            with zipfile.ZipFile(filename) as zf:
                names = zf.namelist()
                if not any(n.endswith('/data.pkl') for n in names):
                    return (f'a zip archive, but not a PyTorch checkpoint (no '
                            f'<name>/data.pkl; it holds {names[:3]})')
                bad = zf.testzip()  # reads every member: only on this failure path
        except (zipfile.BadZipFile, EOFError, OSError):
            return (f'truncated: a zip archive (as torch.save writes) without its '
                    f'central directory at the end; {size} bytes ({_CUT})')
        if bad is not None:
            return f'damaged: member {bad!r} fails its CRC check ({_CUT})'
        return None
    if head[:1] == b'\x80':  # a pickle: the legacy (torch < 1.6) format
        cause = ('truncated: it ends early' if isinstance(error, EOFError)
                 or 'truncated' in str(error) else 'truncated or damaged')
        return (f'a legacy (pickle, torch < 1.6) PyTorch checkpoint that torch cannot '
                f'read ({type(error).__name__}: {error}): {cause}; {size} bytes ({_CUT})')
    n = int.from_bytes(head[:8], 'little')
    if head[8:9] == b'{' and n > 0:
        whole = 8 + n <= size
        return (f'a safetensors file that torch.load cannot read '
                f'({"damaged tensor data?" if whole else "truncated: its header is cut"};'
                f' {size} bytes, {_CUT})')
    if head.startswith(b'version https://git-lfs'):
        return 'a Git LFS pointer, not the weights (run `git lfs pull`)'
    stripped = head.lstrip()
    if stripped[:1] in (b'<', b'{', b'['):
        return (f'a text file (HTML / XML / JSON), not a checkpoint: a failed download '
                f'that saved an error page? It starts with {head[:32]!r}')
    return (f'not a PyTorch checkpoint (neither a torch.save zip archive nor a pickle '
            f'nor safetensors; it starts with {head[:16]!r})')


def load_local_checkpoint(filename, map_location=None):
    """MMEngine's local checkpoint loader, for torch >= 2.6: safe, with clear errors.

    Reads with ``torch.load(weights_only=True)`` and, for the duration of this one
    read, the globals MMEngine's Runner checkpoints need (message hub, NumPy arrays and
    scalars; :mod:`tedloc_mm.utils.safe_checkpoint`). A file needing anything else is
    refused with :class:`UnsafeCheckpointError` (the file, the refused globals, the
    opt-in for a trusted file): nothing in it runs. A file the user trusted
    (``--trust-checkpoint``, ``trust_checkpoint=True``, ``TEDLOC_TRUST_CHECKPOINTS``)
    is read with full unpickling; there is no silent fallback to it.

    A file that cannot be read raises :class:`FileNotFoundError` (missing) or
    :class:`CheckpointReadError` naming the file and, from the file's own bytes
    (:func:`diagnose_checkpoint`), the likely cause: 0 bytes, truncated (a zip
    archive without its end, a pickle that ends early), a zip of something else,
    a Git LFS pointer, an HTML page, an unknown format. Without this, a truncated
    file gives torch's ``OSError: [Errno 22] Invalid argument`` and an empty one
    ``EOFError``, neither naming the file. Every checkpoint read of tedloc_mm goes
    through here: ``load_from``, ``--resume``, ``tools/test.py``, ``init_localizer``,
    a backbone's ``checkpoint``, ``tools/model_converters/*.py``.
    """
    from tedloc_mm.utils.safe_checkpoint import safe_torch_load
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint file not found: {filename}')
    try:
        return safe_torch_load(filename, map_location=map_location)
    except UnsafeCheckpointError:
        raise
    except Exception as e:  # noqa: B902  (re-raised below, naming the file)
        reason = diagnose_checkpoint(filename, e)
        if reason is None:
            reason = f'{type(e).__name__}: {e}'
        raise CheckpointReadError(filename, reason) from e


def patch_checkpoint_loading() -> bool:
    """Re-register MMEngine's local-file checkpoint loader.

    Breaks without it: torch >= 2.6 defaults ``torch.load`` to
    ``weights_only=True``; MMEngine 0.10.7 calls ``torch.load`` without the
    argument, so a Runner checkpoint (``iter_N.pth``/``epoch_N.pth``) fails with
    ``UnpicklingError: Weights only load failed`` in ``--resume``, ``load_from``
    and ``tools/test.py``. The replacement stays ``weights_only=True`` (it adds the
    Runner's globals only inside its own reads), so registering it process-wide does
    not weaken torch's safe loading for other MMEngine users.
    """
    import torch
    from mmengine.runner.checkpoint import CheckpointLoader
    from mmengine.utils import digit_version

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


def apply_all() -> Dict[str, bool]:
    """Apply every workaround (idempotent); return and record which ones acted."""
    # mmcv-lite warns at every import that it has no MultiScaleDeformableAttention;
    # nothing here uses it, so that one message is silenced.
    warnings.filterwarnings('ignore', message='Fail to import ``MultiScaleDeformableAttention``')
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        for name, fn in (('torchvision_ops', patch_torchvision_ops),
                         ('mmcv_ops', patch_mmcv_ops),
                         ('checkpoint_loading', patch_checkpoint_loading),
                         ('cpu_distributed_init', patch_cpu_distributed_init)):
            acted = fn()
            APPLIED[name] = APPLIED.get(name, False) or acted
    return dict(APPLIED)
