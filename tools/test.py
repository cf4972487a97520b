"""Evaluate a checkpoint on a config's test set with MMEngine's Runner.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out metrics.json]
                                           [--cfg-options k=v ...] [--launcher ...]
                                           [--trust-checkpoint] [--analysis-dir DIR]
                                           [--save-scoremaps DIR] [--show-dir DIR] [--debug]
CONFIG: a config file or a model name of model-index.yml.
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
``--save-scoremaps DIR``: the config's WSOLMetric(s) also write the maps they scored, one
``.npy`` per image id, and ``predictions.txt``: a folder ``eval_scoremaps.py`` (and
wsolevaluation's ``evaluation.py`` at 224 px) evaluates to the same numbers
(``WSOLMetric(scoremap_dir=...)``, docs/en/evaluation_protocol.md).
``--show-dir DIR``: as MMPretrain's test.py, turns on ``default_hooks.visualization``
(``enable=True``, ``out_dir``, ``interval``, ``show``, ``wait_time`` set in the config).
A user mistake (missing config or checkpoint, a checkpoint without the model's weights,
unreadable data, ...) stops with one ``error:`` line and exit status 2 (``--debug``: the
traceback; tedloc_mm/tool_errors.py lists them).
Distributed: tools/dist_test.sh CONFIG CHECKPOINT GPUS [args...] (CPU processes use gloo).
"""
import argparse
import json
import os.path as osp

import tedloc_mm  # noqa: F401  (the import hooks of tedloc_mm.compat, first)
from tedloc_mm.model_index import resolve_config
from tedloc_mm.tool_errors import (CfgOptionsAction, UserError, add_debug_argument,
                                   check_file, positive_int, run_tool)

# torch, MMEngine's Runner and the models are imported in main(), so that --help answers
# at once


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test (evaluate) a tedloc_mm model')
    parser.add_argument('config', help='test config file, or a model name of model-index.yml')
    parser.add_argument('checkpoint', help="checkpoint file, or 'none' for models whose "
                        'weights come from the config (configs/clip/)')
    parser.add_argument('--work-dir', help='the dir to save logs and metrics')
    parser.add_argument('--out', help='write the metrics to this JSON file')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction,
                        help='override config settings, e.g. test_dataloader.batch_size=8 '
                        "(quote a value with spaces as one argument: 'k=/a b/c')")
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    parser.add_argument('--trust-checkpoint', action='store_true',
                        help='read CHECKPOINT with full unpickling (weights_only=False): '
                        'only for a file you trust, as unpickling can run code')
    parser.add_argument('--analysis-dir', help='also write curves, per-class table, failure '
                        'breakdown and per-image results here (see the module doc)')
    parser.add_argument('--save-scoremaps', metavar='DIR',
                        help='also save the scored maps (one .npy per image id) and '
                        'predictions.txt here, for eval_scoremaps.py / wsolevaluation')
    parser.add_argument('--show-dir', help='draw the test images into this folder '
                        '(default_hooks.visualization, as MMPretrain\'s test.py)')
    parser.add_argument('--show', action='store_true', help='show the drawn images in a window')
    parser.add_argument('--interval', type=positive_int, default=1,
                        help='with --show-dir / --show: draw every N-th image (default 1)')
    parser.add_argument('--wait-time', type=float, default=2,
                        help='with --show: seconds per image (default 2)')
    add_debug_argument(parser)
    return parser.parse_args(argv)


def with_metric_option(evaluator, key: str, value, option: str = '--analysis-dir'):
    """``evaluator`` (a config's test_evaluator: a metric dict, a list of them or an
    Evaluator dict with ``metrics``) with ``key=value`` set on its WSOLMetric(s);
    UserError naming ``option`` when it has none."""
    metrics = evaluator.get('metrics') if isinstance(evaluator, dict) and \
        'metrics' in evaluator else evaluator
    items = metrics if isinstance(metrics, (list, tuple)) else [metrics]
    from tedloc_mm.evaluation.wsol_metric import WSOLMetric
    from tedloc_mm.registry import METRICS, component_class
    found = 0
    for item in items:
        if isinstance(item, dict) and component_class(METRICS, item.get('type')) is WSOLMetric:
            item[key] = value
            found += 1
    if not found:
        raise UserError(f'{option} needs a WSOLMetric in the config\'s test_evaluator')
    return evaluator


def with_analysis_dir(evaluator, out_dir: str):
    """``evaluator`` with ``analysis_dir`` set on its WSOLMetric(s)."""
    return with_metric_option(evaluator, 'analysis_dir', out_dir, '--analysis-dir')


def with_show_dir(cfg, args):
    """MMPretrain's test.py ``--show`` / ``--show-dir``: turn on the config's
    ``default_hooks.visualization`` and set its options."""
    hooks = cfg.get('default_hooks') or {}
    if 'visualization' not in hooks:
        raise UserError('--show-dir / --show need a visualization hook in the config\'s '
                        'default_hooks (default_hooks.visualization)')
    vis = hooks['visualization']
    vis['enable'] = True
    vis['show'] = args.show
    vis['wait_time'] = args.wait_time
    vis['out_dir'] = args.show_dir
    vis['interval'] = args.interval
    return cfg


def check_inputs(args):
    """The checks that need no model (before torch and the Runner): the config (a file
    or a model-index name, returned as a path) and the checkpoint exist."""
    config = resolve_config(args.config)
    if args.checkpoint.lower() != 'none':
        check_file(args.checkpoint, 'checkpoint')
    return config


def main(argv=None):
    args = parse_args(argv)
    args.config = check_inputs(args)
    from mmengine.dist import is_main_process
    from mmengine.runner import Runner

    from tedloc_mm.engine.runner_config import build_runner_config
    from tedloc_mm.fileio.checkpoint import trusted_checkpoints
    no_ckpt = args.checkpoint.lower() == 'none'
    cfg = build_runner_config(args.config, args.work_dir, args.cfg_options, args.launcher)
    if args.analysis_dir:
        cfg.test_evaluator = with_analysis_dir(cfg.test_evaluator,
                                               osp.abspath(args.analysis_dir))
    if args.save_scoremaps:
        cfg.test_evaluator = with_metric_option(cfg.test_evaluator, 'scoremap_dir',
                                                osp.abspath(args.save_scoremaps),
                                                '--save-scoremaps')
    if args.show or args.show_dir:
        with_show_dir(cfg, args)
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
    raise SystemExit(run_tool(main))
