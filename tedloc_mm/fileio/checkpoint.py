"""Checkpoint files are read without running code from them (``torch.load(weights_only=True)``).

A ``.pth`` file is a pickle: read with ``weights_only=False`` it can call any Python
function (``os.system``, ``exec``) while it loads. torch >= 2.6 therefore reads with
``weights_only=True``: tensors, containers and numbers only, plus the *globals*
(classes and functions) someone has put on torch's allowlist. MMEngine's Runner
checkpoints (``iter_N.pth``, ``epoch_N.pth``, ``best_*.pth``) need a few more globals
for their message hub and scheduler state. :func:`safe_torch_load` adds exactly those,
listed in :data:`RUNNER_CHECKPOINT_GLOBALS` with the file each was found in, for the
duration of one read, with torch's scoped ``torch.serialization.safe_globals``
context (never ``add_safe_globals``: that would widen every later ``torch.load`` of
the process, MMPretrain's and MMSegmentation's included). Anything else is refused
with :class:`UnsafeCheckpointError`, which names the file and the refused globals.

The one opt-in for a file the user trusts (full unpickling, ``weights_only=False``) is
per file, never a fallback:

* ``--trust-checkpoint`` of the tools (``tools/test.py``, ``tools/infer.py``,
  ``tools/train.py`` for ``--resume`` / ``load_from``, ``tools/generate_cams.py
  classifier``, ``tools/model_converters/*.py``): the checkpoint named on that command
  line;
* ``trust_checkpoint=True`` of :func:`~tedloc_mm.apis.init_localizer` /
  :class:`~tedloc_mm.apis.WSOLInferencer`: the checkpoint given to that call;
* :func:`trusted_checkpoints` (a context manager) in Python code;
* the environment variable ``TEDLOC_TRUST_CHECKPOINTS``: a list of files separated
  by ``os.pathsep`` (``:`` on Linux), e.g. for a backbone ``checkpoint=`` of a config.

Files are compared by their real path. torch's own switches: with
``TORCH_FORCE_WEIGHTS_ONLY_LOAD=1`` torch reads even trusted files with
``weights_only=True`` (its variable wins over our ``weights_only=False``);
``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` changes nothing here, because torch 2.13 applies
it only where a caller leaves ``weights_only`` unset, and this loader always sets it
(measured: ``tests/test_fileio/test_safe_loading.py``).
"""
import contextlib
import os
import os.path as osp
import pickle
import re
from collections import Counter
from typing import Iterable, List, Optional

#: environment variable: files (``os.pathsep``-separated) to read with full unpickling
TRUST_ENV = 'TEDLOC_TRUST_CHECKPOINTS'

#: The globals MMEngine 0.10.7's Runner writes into its checkpoints beyond torch's
#: default allowlist, and where each was found. Listed with
#: ``torch.serialization.get_unsafe_globals_in_checkpoint`` on files written by the
#: Runner (tools/train.py on tests/data/configs/tiny_classifier.py with MultiStepLR,
#: epoch-based with save_best + LinearLR/CosineAnnealingLR + AdamW + EMAHook,
#: OneCycleLR, PolyLR + CosineAnnealingMomentum, StepLR/ExponentialLR/CosineRestartLR/
#: ReduceOnPlateauLR, Adam + ConstantLR; configs/demo/tedloc_efficientnet-lite0_stamps.py
#: with and without LeanCheckpointHook, save_best). Plain state dicts, lean and
#: ``untrained.pth`` files, the linear probe, anchor files, converted EVA files and
#: MMPretrain's published classifiers need none of them. tests/test_fileio/test_checkpoint_files.py
#: trains three of these Runner variants and checks that each entry is needed.
RUNNER_CHECKPOINT_GLOBALS = {
    'mmengine.logging.history_buffer.HistoryBuffer':
        "every Runner checkpoint: message_hub['log_scalars'][*]",
    'numpy.ndarray': "HistoryBuffer's _log_history / _count_history arrays",
    'numpy._core.multiarray._reconstruct': 'the same arrays (NumPy >= 2 spelling)',
    'numpy.core.multiarray._reconstruct': 'the same arrays, as NumPy < 2 writes them',
    'numpy.dtype': "the arrays' and scalars' dtypes",
    'numpy.dtypes.Float64DType':
        'the type of those dtypes (torch checks it when the dtype is built): the log '
        'values and eta',
    'numpy.dtypes.Int64DType': "the same, for HistoryBuffer's _count_history",
    'numpy.dtypes.Float32DType':
        "the same, for message_hub['runtime_info']['best_score'] of an MMSegmentation "
        "training with save_best: IoUMetric's values are numpy.float32",
    'numpy._core.multiarray.scalar':
        "message_hub['runtime_info']['eta'], a numpy.float64 (NumPy >= 2 spelling)",
    'numpy.core.multiarray.scalar': 'the same scalar, as NumPy < 2 writes it',
    'builtins.getattr':
        "HistoryBuffer's pickled statistics methods (getattr(HistoryBuffer, 'mean')) "
        "and OneCycleLR's param_schedulers[i]['anneal_func']: only these attributes "
        '(see _allowed_attributes), not the built-in getattr',
    'mmengine.optim.scheduler.param_scheduler.OneCycleParamScheduler':
        "OneCycleLR / OneCycleMomentum: the class of the anneal_func getattr",
}

_REFUSAL_PATTERNS = ('Unsupported global', 'is blocked', 'Trying to call reduce',
                     'Can only build', 'Can only create new object', 'Can only append',
                     'Can only extend', 'Can only set', 'REFUSED_ATTRIBUTE')

_trusted = Counter()  # real paths trusted by trusted_checkpoints(), nested uses counted


class _RefusedAttribute(pickle.UnpicklingError):
    pass


def _allowed_attributes():
    from mmengine.logging.history_buffer import HistoryBuffer
    from mmengine.optim.scheduler.param_scheduler import OneCycleParamScheduler
    return {HistoryBuffer: ('min', 'max', 'current', 'mean'),
            OneCycleParamScheduler: ('_annealing_cos', '_annealing_linear')}


def _restricted_getattr(obj, name):
    """What the pickles of Runner checkpoints call ``builtins.getattr`` for: a method
    of HistoryBuffer / OneCycleParamScheduler, looked up on the class. The real
    ``getattr`` would hand a pickle any attribute of anything on the allowlist (a
    function's ``__globals__``, a builtin's ``__self__`` module, ...)."""
    allowed = _allowed_attributes().get(obj) if isinstance(obj, type) else None
    if allowed is None or not isinstance(name, str) or name not in allowed:
        what = obj.__qualname__ if isinstance(obj, type) else type(obj).__name__
        raise _RefusedAttribute(f'REFUSED_ATTRIBUTE builtins.getattr({what}, {name!r})')
    return getattr(obj, name)


def _safe_globals_list() -> list:
    """(object, name) pairs for ``torch.serialization.safe_globals``, one per entry of
    :data:`RUNNER_CHECKPOINT_GLOBALS`; NumPy's functions are taken from the objects
    they rebuild, so both spellings resolve whichever NumPy is installed."""
    import numpy as np
    from mmengine.logging.history_buffer import HistoryBuffer
    from mmengine.optim.scheduler.param_scheduler import OneCycleParamScheduler
    reconstruct = np.zeros(1).__reduce__()[0]
    scalar = np.float64(0).__reduce__()[0]
    objects = {
        'mmengine.logging.history_buffer.HistoryBuffer': HistoryBuffer,
        'numpy.ndarray': np.ndarray,
        'numpy._core.multiarray._reconstruct': reconstruct,
        'numpy.core.multiarray._reconstruct': reconstruct,
        'numpy.dtype': np.dtype,
        'numpy.dtypes.Float64DType': type(np.dtype('float64')),
        'numpy.dtypes.Int64DType': type(np.dtype('int64')),
        'numpy.dtypes.Float32DType': type(np.dtype('float32')),
        'numpy._core.multiarray.scalar': scalar,
        'numpy.core.multiarray.scalar': scalar,
        'builtins.getattr': _restricted_getattr,
        'mmengine.optim.scheduler.param_scheduler.OneCycleParamScheduler':
            OneCycleParamScheduler,
    }
    assert objects.keys() == RUNNER_CHECKPOINT_GLOBALS.keys()
    return [(obj, name) for name, obj in objects.items()]


@contextlib.contextmanager
def runner_checkpoint_globals():
    """torch's scoped ``safe_globals`` with :data:`RUNNER_CHECKPOINT_GLOBALS`.

    Entries the process had already allowed itself are not added (and so not removed
    on exit). HistoryBuffer's class-level table of statistics methods, which its
    ``__setstate__`` updates from the file, is put back as it was: reading a file never
    changes how the process computes its logs. (torch keeps the allowlist in one
    process-wide set: a ``torch.load`` in another thread during this read sees it.)
    """
    import torch
    from mmengine.logging.history_buffer import HistoryBuffer
    present = set(torch.serialization.get_safe_globals())
    mine = [g for g in _safe_globals_list() if g not in present]
    methods = dict(HistoryBuffer._statistics_methods)
    try:
        with torch.serialization.safe_globals(mine):
            yield
    finally:
        HistoryBuffer._statistics_methods.clear()
        HistoryBuffer._statistics_methods.update(methods)


def _real(path: str) -> str:
    return osp.realpath(osp.expanduser(str(path)))


@contextlib.contextmanager
def trusted_checkpoints(paths: Iterable[Optional[str]]):
    """Within the block, read these files with full unpickling (``weights_only=False``):
    only for files you trust, as unpickling can run code. ``None`` entries are skipped."""
    real = [_real(p) for p in paths if p]
    _trusted.update(real)
    try:
        yield
    finally:
        _trusted.subtract(real)
        for p in real:
            if _trusted[p] <= 0:
                del _trusted[p]


def is_trusted_checkpoint(filename: str) -> bool:
    """Whether ``filename`` was trusted by :func:`trusted_checkpoints` or is listed in
    the ``TEDLOC_TRUST_CHECKPOINTS`` environment variable."""
    real = _real(filename)
    if _trusted.get(real, 0) > 0:
        return True
    listed = os.environ.get(TRUST_ENV, '')
    return any(p and _real(p) == real for p in listed.split(os.pathsep))


def trust_hint(filename: str) -> str:
    return (f'If you trust this file (you made it, or it comes from a source you '
            f'trust), read it with full unpickling: --trust-checkpoint (tools), '
            f'trust_checkpoint=True (init_localizer / WSOLInferencer), or '
            f'{TRUST_ENV}={filename}')


def _refused_globals(filename: str, error: BaseException) -> List[str]:
    """What the weights-only read of ``filename`` refused: the globals outside the
    allowlist (torch's static scan of a zip checkpoint's pickle, run inside the
    allowlist's scope) plus what the error itself names (a global, a refused getattr,
    a class torch would not build, a pickle opcode it does not read)."""
    import torch
    names = []
    try:
        names = list(torch.serialization.get_unsafe_globals_in_checkpoint(filename))
    except Exception:  # noqa: B902  legacy (non-zip) files, protocol-4 pickles
        pass
    text = str(error)
    for pattern in (r'REFUSED_ATTRIBUTE (builtins\.getattr\([^)]*\))',
                    r'GLOBAL (\S+) (?:was not an allowed|whose module)',
                    r'unrecognized function (.+?)(?:\n|$)',
                    r"but got <class '([^']+)'>"):
        for found in re.findall(pattern, text):
            if '.' not in found:  # torch's message drops the module of builtins
                found = 'builtins.' + found
            if found not in names:
                names.append(found)
    for opcode in re.findall(r'Unsupported operand (\d+)', text):
        names.append(f'pickle opcode {opcode} (a pickle protocol above 2, which '
                     "torch's weights-only reader does not read)")
    if not names:
        lines = [x for x in text.splitlines() if x.strip()]
        names = [f'(torch: {lines[-2][:200] if len(lines) > 1 else text[:200]})']
    return sorted(set(names))


def _unread_opcode_of_a_whole_file(filename: str, err: BaseException) -> bool:
    """An opcode torch's weights-only reader lacks (a pickle protocol above 2) in an
    intact torch.save archive: a refusal. Bytes that are no checkpoint at all also read
    as unknown opcodes; those are left to the caller's diagnosis."""
    return 'Unsupported operand' in str(err) and diagnose_checkpoint(filename, err) is None


def safe_torch_load(filename: str, map_location=None):
    """``torch.load`` of a local file: ``weights_only=True`` with the Runner's globals,
    or full unpickling for a trusted file (see the module doc).

    Raises:
        UnsafeCheckpointError: the file needs a global outside the allowlist.
        Exception: whatever ``torch.load`` raises for a damaged file (the caller,
            :func:`load_local_checkpoint`, diagnoses it).
    """
    import torch
    if is_trusted_checkpoint(filename):
        return torch.load(filename, map_location=map_location, weights_only=False)
    with runner_checkpoint_globals():
        try:
            return torch.load(filename, map_location=map_location, weights_only=True)
        except pickle.UnpicklingError as err:
            if not (any(p in str(err) for p in _REFUSAL_PATTERNS)
                    or _unread_opcode_of_a_whole_file(filename, err)):
                raise
            refused = _refused_globals(filename, err)
    raise UnsafeCheckpointError(filename, refused) from None


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
    :mod:`tedloc_mm.fileio.checkpoint`: unpickling it could run code. The message
    names the file, the refused globals and the opt-in for a trusted file."""

    def __init__(self, filename: str, refused):
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
    scalars; :mod:`tedloc_mm.fileio.checkpoint`). A file needing anything else is
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
