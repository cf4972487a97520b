import os
import socket
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
    """A TCP port free on localhost now (for torchrun's rendezvous)."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.fixture
def python_exe():
    return sys.executable
