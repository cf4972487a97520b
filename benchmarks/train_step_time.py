"""Where the wall time of one TeD-Loc training step goes, part by part.

    python benchmarks/train_step_time.py [--config configs/demo/tedloc_efficientnet-lite0_stamps.py]
        [--data-root work_dirs/stamp_demo/data] [--cam-store work_dirs/stamp_demo/cams/train]
        [--batch-size 16] [--steps 5] [--warmup 1] [--threads 2]
        [--cfg-options k=v ...] [--out times.json]

Runs ``--steps`` real training steps (after ``--warmup`` untimed ones) of the config's
model on its train pipeline (the demo's by default: its data and CAM store must exist,
``bash tools/run_demo.sh`` writes them) and times, in each step:

* ``data pipeline``: the next batch from the train dataloader (load image and CAM, flip,
  pseudo-label sampling, packing, collation) and the data preprocessor;
* ``frozen encoder forward``: ``model.backbone`` (under ``no_grad``);
* ``decoder forward + backward``: ``model.neck`` forward, and the backward pass minus
  the head's share (measured separately on a detached copy of z);
* ``head / losses``: ``model.head.loss`` forward and its own backward;
* ``optimizer step``: the optim wrapper's ``step`` and ``zero_grad``.

Prints per part the median seconds per step, its share of the sum, the fastest
step's seconds (the one least disturbed by other processes) and the median CPU seconds
of this process (all its threads; with 2 threads a quiet machine's wall time is about
half of it where both are busy); the 1-minute load average is printed before and
after, as wall times on a shared machine depend on it.
``--cfg-options`` measures variants (e.g. ``model.neck.hidden_channels=64``). The text
anchors do not change the cost: random ones are used, no anchor file is read.
"""
import argparse
import json
import os
import os.path as osp
import statistics
import sys
import time

import tedloc_mm  # noqa: F401  (compat workarounds + registration)
import torch
from mmengine.config import Config, DictAction
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

from tedloc_mm.registry import MODELS

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
PARTS = ('data pipeline', 'frozen encoder forward', 'decoder forward + backward',
         'head / losses', 'optimizer step')


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--config',
                   default=osp.join(REPO, 'configs/demo/tedloc_efficientnet-lite0_stamps.py'))
    p.add_argument('--data-root', default='work_dirs/stamp_demo/data')
    p.add_argument('--cam-store', default='work_dirs/stamp_demo/cams/train')
    p.add_argument('--batch-size', type=int, default=16)
    p.add_argument('--steps', type=int, default=5)
    p.add_argument('--warmup', type=int, default=1)
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--cfg-options', nargs='+', action=DictAction)
    p.add_argument('--out', help='write the numbers to this JSON file')
    return p.parse_args(argv)


class Clock:
    """Wall and process-CPU seconds since the last lap (CPU time, summed over this
    process's threads, depends less on other processes than wall time does)."""

    def __init__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def lap(self):
        wall, cpu = time.perf_counter(), time.process_time()
        out = (wall - self.wall, cpu - self.cpu)
        self.wall, self.cpu = wall, cpu
        return out


def build(args):
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'tedloc'))
    for key, path in (('--data-root', args.data_root), ('--cam-store', args.cam_store)):
        if not osp.isdir(path):
            sys.exit(f'{key} {path} does not exist: run `bash tools/run_demo.sh` first '
                     'or point it at a WSOL data root / CAM store')
    loader = cfg.train_dataloader.copy()
    loader['batch_size'] = args.batch_size
    loader['dataset']['data_root'] = args.data_root
    # the configs name the store on the dataset (LoadCAM reads it from there); a
    # LoadCAM with a store of its own is pointed at it too
    loader['dataset']['cam_store'] = args.cam_store
    for t in loader['dataset']['pipeline']:
        if t['type'] == 'LoadCAM' and t.get('cam_store'):
            t['cam_store'] = args.cam_store
    model_cfg = cfg.model.to_dict() if hasattr(cfg.model, 'to_dict') else dict(cfg.model)
    head = dict(model_cfg['head'])
    g = torch.Generator().manual_seed(0)
    head['anchor_embeddings'] = torch.randn(head['num_classes'], head['in_channels'],
                                            generator=g)
    head['anchor_file'] = None
    model_cfg['head'] = head
    model = MODELS.build(model_cfg)
    model.init_weights()
    model.train()
    optim = build_optim_wrapper(model, cfg.optim_wrapper)
    return cfg, model, Runner.build_dataloader(loader), optim


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg, model, loader, optim = build(args)
    batches = iter(loader)
    times = {p: [] for p in PARTS}
    cpu_times = {p: [] for p in PARTS}
    load_before = os.getloadavg()
    for step in range(args.warmup + args.steps):
        t, c = {}, {}
        clock = Clock()
        data = model.data_preprocessor(next(batches), True)
        t['data pipeline'], c['data pipeline'] = clock.lap()

        feat = model.backbone(data['inputs'])
        t['frozen encoder forward'], c['frozen encoder forward'] = clock.lap()

        z = model.neck(feat, input_hw=tuple(data['inputs'].shape[-2:]))
        t_neck, c_neck = clock.lap()

        losses = model.head.loss(z, data['data_samples'])
        t_head_fwd, c_head_fwd = clock.lap()

        sum(losses.values()).backward()
        t_bwd, c_bwd = clock.lap()

        # the head's own backward, on a detached z (its gradients discarded)
        z_det = z.detach().requires_grad_(True)
        head_losses = model.head.loss(z_det, data['data_samples'])
        clock.lap()
        grads = torch.autograd.grad(sum(head_losses.values()),
                                    [z_det] + [p for p in model.head.parameters()
                                               if p.requires_grad])
        t_head_bwd, c_head_bwd = clock.lap()
        del grads

        optim.step()
        optim.zero_grad()
        t['optimizer step'], c['optimizer step'] = clock.lap()
        t['decoder forward + backward'] = t_neck + max(0.0, t_bwd - t_head_bwd)
        c['decoder forward + backward'] = c_neck + max(0.0, c_bwd - c_head_bwd)
        t['head / losses'] = t_head_fwd + t_head_bwd
        c['head / losses'] = c_head_fwd + c_head_bwd
        if step >= args.warmup:
            for p in PARTS:
                times[p].append(t[p])
                cpu_times[p].append(c[p])
    load_after = os.getloadavg()

    med = {p: statistics.median(v) for p, v in times.items()}
    fastest = {p: min(v) for p, v in times.items()}
    cpu = {p: statistics.median(v) for p, v in cpu_times.items()}
    total = sum(med.values())
    print(f'{osp.relpath(args.config, REPO)}: batch {args.batch_size}, '
          f'{torch.get_num_threads()} thread(s), median of {args.steps} steps after '
          f'{args.warmup} warm-up; 1-min load average {load_before[0]:.2f} before, '
          f'{load_after[0]:.2f} after ({os.cpu_count()} CPUs)')
    if args.cfg_options:
        print('cfg-options: ' + ' '.join(f'{k}={v}' for k, v in args.cfg_options.items()))
    print('| part | s / step (median) | share | s / step (fastest) | CPU s / step (median) |')
    print('|---|---|---|---|---|')
    for p in PARTS:
        print(f'| {p} | {med[p]:.3f} | {100 * med[p] / total:.1f}% | {fastest[p]:.3f} | '
              f'{cpu[p]:.3f} |')
    print(f'| sum | {total:.3f} | 100% | {sum(fastest.values()):.3f} | '
          f'{sum(cpu.values()):.3f} |')
    out = dict(config=args.config, batch_size=args.batch_size, steps=args.steps,
               threads=torch.get_num_threads(), median_s=med, fastest_s=fastest,
               median_cpu_s=cpu, samples_s=times, samples_cpu_s=cpu_times,
               load_average=dict(before=load_before, after=load_after),
               cfg_options=args.cfg_options and {k: str(v) for k, v in
                                                 args.cfg_options.items()})
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(out, f, indent=2)
    return out


if __name__ == '__main__':
    main()
