"""What the tools share: turning a config file and CLI options into a Runner config."""
import os
import os.path as osp
from typing import Optional

import torch
from mmengine.config import Config, DictAction  # noqa: F401  (DictAction re-exported)


def setup_dist_backend(cfg: Config, launcher: str) -> None:
    """Make a distributed run work on CPU processes when the machine has no CUDA.

    Our configs keep MMPretrain's ``nccl`` default (right for GPU clusters); CPU
    processes under ``tools/dist_train.sh`` / ``dist_test.sh`` need ``gloo``, and
    DistributedDataParallel must not be given ``device_ids`` (the Runner passes
    ``[LOCAL_RANK]`` by default, which DDP rejects for CPU modules).
    """
    if launcher == 'none' or torch.cuda.is_available():
        return
    cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})['backend'] = 'gloo'
    wrapper = cfg.get('model_wrapper_cfg') or dict(type='MMDistributedDataParallel')
    wrapper.setdefault('device_ids', None)
    cfg.model_wrapper_cfg = wrapper


def build_runner_config(config: str,
                        work_dir: Optional[str] = None,
                        cfg_options: Optional[dict] = None,
                        launcher: str = 'none') -> Config:
    """Load ``config``, apply ``--cfg-options``, ``--work-dir`` and ``--launcher``.

    The work dir defaults to ``work_dirs/<config name>``, MMPretrain's convention.
    """
    if not osp.isfile(config):
        raise FileNotFoundError(f'config file not found: {config}')
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    cfg.launcher = launcher
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(config))[0])
    setup_dist_backend(cfg, launcher)
    # torchrun sets LOCAL_RANK; older launchers pass --local_rank
    os.environ.setdefault('LOCAL_RANK', '0')
    return cfg
