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


SAMPLER_TYPES = ('PseudoLabelSampler', 'tedloc.PseudoLabelSampler')


def _samplers(node):
    """Every PseudoLabelSampler config dict below ``node`` (pipelines of wrapped
    datasets included)."""
    if isinstance(node, dict):
        if node.get('type') in SAMPLER_TYPES:
            yield node
        for value in node.values():
            yield from _samplers(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            yield from _samplers(value)


def resolve_pseudo_label_stride(cfg: Config) -> Optional[int]:
    """Give each pseudo-label sampler of the training data the decoder's output stride.

    The decoder's ``model.neck.out_stride`` is the one source: a
    ``PseudoLabelSampler`` without ``out_stride`` (and without ``out_size``) gets it;
    one that states another stride is an error naming both, before any model or data
    is built. Returns the stride (None for a config without a TeD-Loc decoder).
    """
    neck = (cfg.get('model') or {}).get('neck') or {}
    stride = neck.get('out_stride') if isinstance(neck, dict) else None
    samplers = list(_samplers(cfg.get('train_dataloader') or {}))
    for sampler in samplers:
        if sampler.get('out_size') is not None:
            continue
        given = sampler.get('out_stride')
        if given is None:
            if stride is None:
                raise ValueError('PseudoLabelSampler has no out_stride and the config has no '
                                 'model.neck.out_stride to take it from: set one of them')
            sampler['out_stride'] = stride
        elif stride is not None and given != stride:
            raise ValueError(f'PseudoLabelSampler out_stride={given} differs from the '
                             f"decoder's model.neck.out_stride={stride}: the pseudo-labels "
                             'must lie on the decoder\'s grid. Leave the sampler\'s '
                             'out_stride unset: it is taken from the model.')
    return stride


def build_runner_config(config: str,
                        work_dir: Optional[str] = None,
                        cfg_options: Optional[dict] = None,
                        launcher: str = 'none') -> Config:
    """Load ``config``, apply ``--cfg-options``, ``--work-dir`` and ``--launcher``.

    The work dir defaults to ``work_dirs/<config name>``, MMPretrain's convention.
    The pseudo-label sampler takes its stride from the decoder
    (:func:`resolve_pseudo_label_stride`).
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
    resolve_pseudo_label_stride(cfg)
    # torchrun sets LOCAL_RANK; older launchers pass --local_rank
    os.environ.setdefault('LOCAL_RANK', '0')
    return cfg
