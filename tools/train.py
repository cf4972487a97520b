"""Train a model from a config with MMEngine's Runner.

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp]
                                 [--cfg-options k=v ...] [--launcher none|pytorch|slurm|mpi]
                                 [--trust-checkpoint]
Distributed: tools/dist_train.sh CONFIG GPUS [args...] (CPU processes use gloo).
Checkpoints (``--resume``, ``load_from``, a backbone's ``checkpoint``) are read with
``torch.load(weights_only=True)`` plus the globals of MMEngine's Runner checkpoints; a file
needing anything else is refused. ``--trust-checkpoint`` reads the ``--resume`` /
``load_from`` file with full unpickling, for a file you trust (a backbone file: list it in
the environment variable TEDLOC_TRUST_CHECKPOINTS).
"""
import argparse

import tedloc_mm  # noqa: F401  (the import hooks of tedloc_mm.compat, first)
from tedloc_mm.model_index import resolve_config
from tedloc_mm.tool_errors import (CfgOptionsAction, UserError, add_debug_argument,
                                   run_tool)

# torch, MMEngine's Runner and the models are imported by the functions that need them,
# so that --help answers at once


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train a tedloc_mm model')
    parser.add_argument('config', help='train config file, or a model name of model-index.yml')
    parser.add_argument('--work-dir', help='the dir to save logs and checkpoints')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume from the given checkpoint, or (no value) from the latest '
        'checkpoint in the work dir')
    parser.add_argument('--amp', action='store_true',
                        help='automatic mixed precision (needs a GPU, NPU, MLU or MUSA '
                        'device: MMEngine\'s AmpOptimWrapper has no CPU mode)')
    parser.add_argument('--no-validate', action='store_true',
                        help='do not evaluate checkpoints during training')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the learning rate by the actual total batch size '
                        '(processes x train_dataloader.batch_size) over the config\'s '
                        'auto_scale_lr.base_batch_size')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction,
                        help='override config settings, e.g. train_cfg.max_epochs=5')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    # torchrun passes LOCAL_RANK through the environment; older launchers use this
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    parser.add_argument('--trust-checkpoint', action='store_true',
                        help='read the --resume / load_from checkpoint with full unpickling '
                        '(weights_only=False): only for a file you trust, as unpickling can '
                        'run code')
    add_debug_argument(parser)
    return parser.parse_args(argv)


def amp_device_available() -> bool:
    """Whether MMEngine's AmpOptimWrapper can run here (it asserts one of these)."""
    from mmengine import device
    checks = ('is_cuda_available', 'is_npu_available', 'is_mlu_available',
              'is_musa_available')
    return any(getattr(device, name, lambda: False)() for name in checks)


def make_config(args):
    """The Runner config for the parsed command line (errors for bad combinations)."""
    from tedloc_mm.engine.runner_config import build_runner_config
    args.config = resolve_config(args.config)
    cfg = build_runner_config(args.config, args.work_dir, args.cfg_options, args.launcher)
    if args.amp:
        if not amp_device_available():
            # MMEngine would stop with a bare AssertionError while building the Runner
            raise UserError('--amp needs a GPU (or NPU / MLU / MUSA device): '
                             "MMEngine's AmpOptimWrapper has no CPU mode. Train without "
                             '--amp on the CPU.')
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    if args.no_validate:
        cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif args.resume is not None:
        cfg.resume, cfg.load_from = True, args.resume
    if args.auto_scale_lr:
        cfg.setdefault('auto_scale_lr', {})['enable'] = True
        if 'base_batch_size' not in cfg.auto_scale_lr:
            raise UserError(f'--auto-scale-lr needs auto_scale_lr.base_batch_size '
                             f'(the total batch the lr of {args.config} is meant for); '
                             'set it in the config or with --cfg-options '
                             'auto_scale_lr.base_batch_size=N')
    return cfg


def trusted_files(args, cfg) -> list:
    """The checkpoint(s) --trust-checkpoint applies to: load_from / --resume PATH, or
    with a bare --resume the latest checkpoint of the work dir (what MMEngine resumes)."""
    from mmengine.runner import find_latest_checkpoint
    if not args.trust_checkpoint:
        return []
    if cfg.get('resume') and cfg.get('load_from') is None:
        return [find_latest_checkpoint(cfg.work_dir)]
    return [cfg.get('load_from')]


def main(argv=None):
    args = parse_args(argv)
    cfg = make_config(args)
    from mmengine.runner import Runner

    from tedloc_mm.fileio.checkpoint import trusted_checkpoints
    runner = Runner.from_cfg(cfg)
    with trusted_checkpoints(trusted_files(args, cfg)):
        runner.train()


if __name__ == '__main__':
    raise SystemExit(run_tool(main))
