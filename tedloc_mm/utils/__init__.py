from .runner_setup import build_runner_config, setup_dist_backend
from .safe_checkpoint import (TRUST_ENV, is_trusted_checkpoint, safe_torch_load,
                              trusted_checkpoints)

__all__ = ['TRUST_ENV', 'build_runner_config', 'is_trusted_checkpoint', 'safe_torch_load',
           'setup_dist_backend', 'trusted_checkpoints']
