import os
import sys

import pytest

# No hub downloads in tests: anything that would fetch weights must fail fast.
os.environ.setdefault('HF_HUB_OFFLINE', '1')
os.environ.setdefault('TRANSFORMERS_OFFLINE', '1')

import tedloc_mm  # noqa: E402,F401  (compat workarounds before anything else imports)

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def repo_root():
    return REPO_ROOT


@pytest.fixture
def free_port():
    """MASTER_PORT for a process group of one process: 0, so that its store binds a
    port the OS picks as it starts. (A port found free here and released could be
    taken by another process before the store binds it.) Launches of several processes
    go through tools/dist_*.sh, where torchrun picks its own port (--standalone)."""
    return 0


@pytest.fixture
def python_exe():
    return sys.executable
