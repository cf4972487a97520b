import os
import random
import sys

import pytest

# No hub downloads in tests: anything that would fetch weights must fail fast.
os.environ.setdefault('HF_HUB_OFFLINE', '1')
os.environ.setdefault('TRANSFORMERS_OFFLINE', '1')

import tedloc_mm  # noqa: E402,F401  (its import hooks before anything imports torchvision)
import numpy as np  # noqa: E402
import torch  # noqa: E402

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(autouse=True)
def same_global_random_state():
    """Each test starts the global generators (Python, NumPy, torch) from seed 0.

    The tests' own random inputs come from local seeded generators; this is for the
    draws of the code under test: model initialisation, PseudoLabelSampler, MMCV's
    random transforms. Without it their result would depend on which tests ran
    before on the same (xdist) worker."""
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)


@pytest.fixture
def repo_root():
    return REPO_ROOT


@pytest.fixture
def python_exe():
    return sys.executable
