from .runner_setup import build_runner_config, setup_dist_backend

__all__ = ['build_runner_config', 'setup_dist_backend']
