"""One way for the command-line tools to fail: a user mistake -> one ``error:`` line, exit 2.

Every script under ``tools/`` ends with ``raise SystemExit(run_tool(main))``. A *user
mistake* is an exception of one of the classes named in :data:`USER_ERRORS` (matched by
name along the exception's class hierarchy, so that this module imports neither torch nor
the modules that define them):

======================  =============================================================
``UserError``           a tool's own checks: a bad option value (``--cam-threshold 1.5``),
                        a device that does not exist (``--device cuda:0`` without CUDA),
                        a ``--cfg-options`` item that is not ``KEY=VALUE``, ...
``FileNotFoundError``,  a missing or unreadable input (config, checkpoint, image, folder)
``IsADirectoryError``,
``NotADirectoryError``,
``PermissionError``
``ImageReadError``      an image file that cannot be decoded
``WSOLMetadataError``   a wrong line in WSOL metadata (names the file and line)
``ClassNamesError``     a wrong class-names file
``CheckpointWeightsError``  a checkpoint without the model's weights (e.g. the linear
                        probe given as a TeD-Loc checkpoint), naming the missing groups
``CheckpointReadError``, a checkpoint that cannot be read, or that needs full unpickling
``UnsafeCheckpointError``  (``--trust-checkpoint``)
``ScoremapError``       a saved score map / predictions file that cannot be evaluated
``SegLabelError``       a wrong segmentation label file
``PackageFetchError``   a Debian package the stamp benchmark needs cannot be fetched
======================  =============================================================

Such an error prints ``<tool>: error: <class>: <message>`` (the class name left out for
``UserError``; newlines folded into one line) on
stderr and the tool exits with status 2, the status of argparse's own usage errors.
Anything else is an internal bug and raises with its traceback. ``--debug`` (every tool
has it) or the environment variable ``TEDLOC_DEBUG=1`` shows the traceback of user
mistakes too. In a distributed run (``RANK`` set by torchrun / slurm) only rank 0
prints; every process exits with status 2.
"""
import argparse
import os
import os.path as osp
import re
import sys
from typing import Callable, Optional, Sequence

#: environment variable: any value but '' / '0' shows the traceback of user mistakes
DEBUG_ENV = 'TEDLOC_DEBUG'

#: the exception classes (by name) that are user mistakes, see the module doc
USER_ERRORS = frozenset({
    'UserError', 'FileNotFoundError', 'IsADirectoryError', 'NotADirectoryError',
    'PermissionError', 'ImageReadError', 'WSOLMetadataError', 'ClassNamesError',
    'CheckpointWeightsError', 'CheckpointReadError', 'UnsafeCheckpointError',
    'ScoremapError', 'SegLabelError', 'PackageFetchError'})

#: the exit status of a user mistake
EXIT_USER_ERROR = 2


class UserError(Exception):
    """A user mistake found by a tool's own checks (the message says what to do)."""


def is_user_error(err: BaseException) -> bool:
    """Whether ``err`` is a user mistake (its class or a base named in USER_ERRORS)."""
    return any(cls.__name__ in USER_ERRORS for cls in type(err).__mro__)


def one_line(err: BaseException) -> str:
    """The message of ``err`` on one line; an error re-raised from a DataLoader worker
    (its message holds the worker's traceback) gives the worker's last line."""
    msg = str(err)
    if 'Original Traceback' in msg:
        last = [part.strip() for part in msg.splitlines() if part.strip()][-1]
        msg = last.split(': ', 1)[1] if last.startswith(type(err).__name__ + ':') else last
    return ' '.join(part.strip() for part in msg.splitlines() if part.strip()) or \
        type(err).__name__


def debug_requested(argv: Optional[Sequence[str]] = None) -> bool:
    """``--debug`` among the arguments or ``TEDLOC_DEBUG`` set (not '' or '0')."""
    argv = sys.argv[1:] if argv is None else argv
    return '--debug' in argv or os.environ.get(DEBUG_ENV, '') not in ('', '0')


def add_debug_argument(parser: argparse.ArgumentParser) -> None:
    """The ``--debug`` option every tool takes (read by :func:`run_tool`)."""
    parser.add_argument('--debug', action='store_true',
                        help=f'show the traceback of an error (or set {DEBUG_ENV}=1)')


def _is_main_rank() -> bool:
    return os.environ.get('RANK', '0') in ('', '0')


def run_tool(main: Callable, argv: Optional[Sequence[str]] = None,
             prog: Optional[str] = None) -> int:
    """Run ``main(argv)``; a user mistake -> one ``error:`` line on stderr and 2.

    Returns the exit status (0, 2, or ``main``'s own int return); use as
    ``raise SystemExit(run_tool(main))``.
    """
    prog = prog or osp.basename(sys.argv[0])
    try:
        ret = main(argv) if argv is not None else main()
    except Exception as err:   # noqa: B902  (re-raised unless a user mistake)
        if not is_user_error(err) or debug_requested(argv):
            raise
        if _is_main_rank():
            kind = '' if isinstance(err, UserError) else f'{type(err).__name__}: '
            print(f'{prog}: error: {kind}{one_line(err)}', file=sys.stderr, flush=True)
        return EXIT_USER_ERROR
    return ret if isinstance(ret, int) and not isinstance(ret, bool) else 0


# -- checks a tool makes before its heavy imports -------------------------------------

def check_file(path: str, what: str) -> str:
    """``path`` if it is a readable file, else UserError naming it as ``what``."""
    if not osp.exists(path):
        raise UserError(f'{what} not found: {path}')
    if not osp.isfile(path):
        raise UserError(f'{what} is not a file: {path}')
    if not os.access(path, os.R_OK):
        raise UserError(f'{what} is not readable: {path}')
    return path


def check_device(device: str) -> str:
    """``device`` if this machine has it (``cpu``, ``cuda``, ``cuda:N``, ``mps``),
    else UserError saying which devices there are. Imports torch."""
    import torch
    m = re.fullmatch(r'(cpu|cuda|mps)(?::(\d+))?', device)
    if m is None:
        raise UserError(f"--device {device!r}: expected 'cpu', 'cuda', 'cuda:N' or 'mps'")
    kind, index = m.group(1), m.group(2)
    if kind == 'cuda':
        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if n == 0:
            raise UserError(f'--device {device}: this machine has no CUDA device '
                            '(use --device cpu)')
        if index is not None and int(index) >= n:
            raise UserError(f'--device {device}: this machine has {n} CUDA device(s), '
                            f'cuda:0 to cuda:{n - 1}')
    elif kind == 'mps' and not (hasattr(torch.backends, 'mps')
                                and torch.backends.mps.is_available()):
        raise UserError(f'--device {device}: MPS is not available here (use --device cpu)')
    return device


def unit_interval(value: str) -> float:
    """argparse ``type``: a number in [0, 1)."""
    try:
        x = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f'{value!r} is not a number') from None
    if not 0 <= x < 1:
        raise argparse.ArgumentTypeError(f'{value} is outside [0, 1)')
    return x


def positive_int(value: str) -> int:
    """argparse ``type``: an integer >= 1."""
    try:
        x = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f'{value!r} is not an integer') from None
    if x < 1:
        raise argparse.ArgumentTypeError(f'{value} is not >= 1')
    return x


_LIST_SPACES = re.compile(r'\s*([\[\](),])\s*')


class CfgOptionsAction(argparse.Action):
    """MMEngine's ``DictAction`` (``--cfg-options k=v ...``) that keeps spaces in values.

    MMEngine's parser removes every space of a value (``a=/x y/z`` -> ``/xy/z``) and
    fails with ``ValueError: not enough values to unpack`` on an item without ``=``
    (what the shell makes of an unquoted ``a=/x y/z``). Here a plain value keeps its
    spaces (quote the item as one argument: ``'a=/x y/z'``); in a list or tuple value
    the spaces around ``[ ] ( ) ,`` go, and a space inside an element is refused with
    that reason; an item without ``=`` is refused naming it.
    """

    def __call__(self, parser, namespace, values, option_string=None):
        from mmengine.config import DictAction
        options = dict(getattr(namespace, self.dest, None) or {})
        for item in values:
            if '=' not in item:
                parser.error(f'{option_string} {item!r} is not KEY=VALUE (a value with '
                             "spaces must be quoted as one argument: 'key=/a b/c')")
            key, val = item.split('=', 1)
            stripped = val.strip().strip('\'"')
            if not re.search(r'\s', stripped):
                options[key] = DictAction._parse_iterable(val)
            elif stripped[:1] in '[(' or ',' in stripped:
                compact = _LIST_SPACES.sub(r'\1', stripped)
                if re.search(r'\s', compact):
                    parser.error(f'{option_string} {item!r}: an element of a list value '
                                 'contains a space, which MMEngine\'s list syntax cannot '
                                 'keep; set it in a config file instead')
                options[key] = DictAction._parse_iterable(compact)
            else:
                options[key] = stripped   # a path or text with spaces, kept as it is
        setattr(namespace, self.dest, options)
