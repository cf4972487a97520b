"""Evaluate a checkpoint on a config's test set with MMEngine's Runner.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out metrics.json]
                                           [--cfg-options k=v ...] [--launcher ...]
                                           [--trust-checkpoint] [--analysis-dir DIR]
CHECKPOINT ``none``: no checkpoint, for models that load their own weights from the config
(the zero-shot CLIP localizers of configs/clip/).
The checkpoint is read with ``torch.load(weights_only=True)`` (plus the globals of MMEngine's
Runner checkpoints): a file that needs anything else is refused, as unpickling it could run
code; ``--trust-checkpoint`` reads CHECKPOINT with full unpickling, for a file you trust.
It must hold the model's weights (all of them, after a lean checkpoint's frozen encoder was
restored): a weightless or foreign file is refused, naming the missing groups
(``tedloc_mm/engine/checkpoint_weights.py``).
``--analysis-dir DIR``: the config's WSOLMetric also writes the curves behind its numbers
(``curves.json`` + ``curves.png``: box accuracy vs CAM threshold per IoU, largest and all
contours, best threshold marked; PxAP's precision-recall curve with masks), the per-class
table (``per_class.csv`` / ``.md``), the failure breakdown (``failures.json``) and the
per-image results (``per_image.jsonl``, read by tools/analysis_tools/analyze_results.py);
with a ``TensorboardVisBackend`` in the config's visualizer the figure and the curves
(scalars ``wsol_curve/...``, step = CAM threshold x 100) go to TensorBoard too.
Distributed: tools/dist_test.sh CONFIG CHECKPOINT GPUS [args...] (CPU processes use gloo).
"""
import argparse
import json
import os.path as osp

import tedloc_mm  # noqa: F401  (the import hooks of tedloc_mm.compat, first)
from mmengine.config import DictAction

# torch, MMEngine's Runner and the models are imported in main(), so that --help answers
# at once


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test (evaluate) a tedloc_mm model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help="checkpoint file, or 'none' for models whose "
                        'weights come from the config (configs/clip/)')
    parser.add_argument('--work-dir', help='the dir to save logs and metrics')
    parser.add_argument('--out', help='write the metrics to this JSON file')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, e.g. test_dataloader.batch_size=8')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    parser.add_argument('--trust-checkpoint', action='store_true',
                        help='read CHECKPOINT with full unpickling (weights_only=False): '
                        'only for a file you trust, as unpickling can run code')
    parser.add_argument('--analysis-dir', help='also write curves, per-class table, failure '
                        'breakdown and per-image results here (see the module doc)')
    return parser.parse_args(argv)


def with_analysis_dir(evaluator, out_dir: str):
    """``evaluator`` (a config's test_evaluator: a metric dict, a list of them or an
    Evaluator dict with ``metrics``) with ``analysis_dir`` set on its WSOLMetric(s);
    ValueError when it has none."""
    metrics = evaluator.get('metrics') if isinstance(evaluator, dict) and \
        'metrics' in evaluator else evaluator
    items = metrics if isinstance(metrics, (list, tuple)) else [metrics]
    found = 0
    for item in items:
        if isinstance(item, dict) and str(item.get('type', '')).split('.')[-1] == 'WSOLMetric':
            item['analysis_dir'] = out_dir
            found += 1
    if not found:
        raise ValueError('--analysis-dir needs a WSOLMetric in the config\'s test_evaluator')
    return evaluator


def main(argv=None):
    args = parse_args(argv)
    from mmengine.dist import is_main_process
    from mmengine.runner import Runner

    from tedloc_mm.engine.runner_config import build_runner_config
    from tedloc_mm.fileio.checkpoint import trusted_checkpoints
    no_ckpt = args.checkpoint.lower() == 'none'
    if not no_ckpt and not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint not found: {args.checkpoint}')
    cfg = build_runner_config(args.config, args.work_dir, args.cfg_options, args.launcher)
    if args.analysis_dir:
        cfg.test_evaluator = with_analysis_dir(cfg.test_evaluator,
                                               osp.abspath(args.analysis_dir))
    # the config's default_hooks refuse a file without the model's weights
    # (checkpoint_weights) and draw the curves of --analysis-dir (curves)
    cfg.load_from = None if no_ckpt else args.checkpoint
    cfg.resume = False
    runner = Runner.from_cfg(cfg)
    with trusted_checkpoints([cfg.load_from] if args.trust_checkpoint else []):
        metrics = runner.test()
    if args.out and is_main_process():
        with open(args.out, 'w') as f:
            json.dump({k: float(v) if hasattr(v, '__float__') else v
                       for k, v in metrics.items()}, f, indent=2, sort_keys=True)
        print(f'metrics written to {args.out}')
    if args.analysis_dir and is_main_process():
        print(f'curves, tables and per-image results written to {args.analysis_dir}')
    return metrics


if __name__ == '__main__':
    main()
