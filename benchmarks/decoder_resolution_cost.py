"""What the decoder's output resolution costs: memory and step time per out_stride.

    python benchmarks/decoder_resolution_cost.py [--config configs/tedloc_eva-l_cub.py]
        [--out-strides 4 2 1] [--batch-size 16] [--steps 3] [--warmup 1] [--threads 2]
        [--device cpu|cuda] [--out cost.json]

One training step of TeD-Loc's trainable part, the decoder D and the head (g, f and the
three losses), forward + backward + SGD update, for each ``--out-strides`` value of
``model.neck.out_stride`` (1 = full resolution, the authors' localizer: TrCAM
``dlib/visiontransformer/vit_models.py`` decodes to the input size). The frozen encoder
is not run: its output is random features of the shape it gives (EVA-L: 1024 channels on
the 16 x 16 tokens of a 224 px crop; the demo's EfficientNet-Lite0: 1392 channels at
14 x 14), since it runs under ``no_grad`` and costs the same at every out_stride
(``benchmarks/train_step_time.py`` times it). Each image gets 16 FG + 16 BG sampled
cells (the loss's cost does not depend on the resolution).

Each out_stride runs in its own process, so that its peak memory is its own:

* ``cpu``: peak resident memory during the steps (warm-up included) minus the peak
  before them (``ru_maxrss``, the kernel's high-water mark of this process);
* ``cuda``: ``torch.cuda.max_memory_allocated`` during the steps (warm-up included)
  minus the memory allocated before them (the same command on a GPU machine).

Prints per out_stride the decoder grid, the parameters, the median wall seconds per step,
the median CPU seconds (``process_time``, all threads) and the peak memory, with the
ratios to the first out_stride given; the 1-minute load average before and after.
"""
import argparse
import json
import os
import os.path as osp
import resource
import statistics
import subprocess
import sys
import time

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
#: encoder output (channels, stride) and input size of the configs' frozen encoders
ENCODERS = {'eva': (1024, 14, 224), 'efficientnet': (1392, 16, 224)}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--config', default=osp.join(REPO, 'configs/tedloc_eva-l_cub.py'))
    p.add_argument('--out-strides', type=int, nargs='+', default=[4, 2, 1])
    p.add_argument('--batch-size', type=int, default=16)
    p.add_argument('--steps', type=int, default=3)
    p.add_argument('--warmup', type=int, default=1)
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--device', default='cpu', choices=('cpu', 'cuda'))
    p.add_argument('--out', help='write the numbers to this JSON file')
    p.add_argument('--one', type=int, help=argparse.SUPPRESS)  # internal: one out_stride
    return p.parse_args(argv)


def encoder_shape(cfg) -> tuple:
    """(channels, stride, input size) of the config's frozen encoder, from its type."""
    inner = cfg.model.backbone.get('backbone', cfg.model.backbone)
    name = str(inner.get('type', '')).lower() + str(inner.get('arch', '')).lower()
    for key, shape in ENCODERS.items():
        if key in name:
            return shape
    sys.exit(f'{cfg.filename}: unknown encoder {inner.get("type")!r}; known: {list(ENCODERS)}')


def measure_one(args) -> dict:
    """Build D and the head at out_stride ``args.one``; time ``args.steps`` steps."""
    import torch
    import tedloc_mm  # noqa: F401  (registration)
    from mmengine.config import Config
    from mmpretrain.structures import DataSample

    from tedloc_mm.registry import MODELS

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = Config.fromfile(args.config)
    channels, in_stride, size = encoder_shape(cfg)
    neck = cfg.model.neck.to_dict()
    neck.update(in_channels=channels, in_stride=in_stride, out_stride=args.one)
    neck.pop('patch_size', None)
    head = cfg.model.head.to_dict()
    head.update(anchor_file=None, anchor_embeddings=torch.randn(
        head['num_classes'], neck['out_channels']))
    dev = torch.device(args.device)
    decoder, head_m = MODELS.build(neck).to(dev), MODELS.build(head).to(dev)
    params = [p for m in (decoder, head_m) for p in m.parameters() if p.requires_grad]
    optim = torch.optim.SGD(params, lr=1e-3, momentum=0.9)
    b, hw = args.batch_size, size // in_stride
    feats = torch.randn(b, channels, hw, hw, device=dev)
    grid = size // args.one
    samples = []
    for i in range(b):
        m = torch.full((grid, grid), -1, dtype=torch.long)
        cells = torch.randperm(grid * grid)[:32]
        m.view(-1)[cells[:16]], m.view(-1)[cells[16:]] = 1, 0
        ds = DataSample(metainfo=dict(img_shape=(size, size), img_id=str(i)))
        ds.set_gt_label(i % head['num_classes'])
        ds.pseudo_label_map = m
        samples.append(ds)

    def step():
        z = decoder(feats, input_hw=(size, size))
        loss = sum(head_m.loss(z, samples).values())
        optim.zero_grad()
        loss.backward()
        optim.step()
        return tuple(z.shape)

    # memory before the first step (warm-up included: the high-water mark only grows)
    if dev.type == 'cuda':
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
    else:
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    for _ in range(args.warmup):
        z_shape = step()
    walls, cpus = [], []
    for _ in range(args.steps):
        w, c = time.perf_counter(), time.process_time()
        z_shape = step()
        if dev.type == 'cuda':
            torch.cuda.synchronize()
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    if dev.type == 'cuda':
        peak = torch.cuda.max_memory_allocated() - base
    else:
        peak = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base, 0)
    return dict(out_stride=args.one, grid=list(z_shape[-2:]), batch=b,
                params_m=round(sum(p.numel() for p in params) / 1e6, 3),
                step_s=round(statistics.median(walls), 3),
                cpu_s=round(statistics.median(cpus), 3),
                peak_mib=round(peak / 2 ** 20, 1), device=args.device)


def main(argv=None):
    args = parse_args(argv)
    if args.one is not None:
        print(json.dumps(measure_one(args)))
        return
    rows, load = [], [os.getloadavg()[0]]
    for s in args.out_strides:
        cmd = [sys.executable, __file__, '--config', args.config, '--one', str(s),
               '--batch-size', str(args.batch_size), '--steps', str(args.steps),
               '--warmup', str(args.warmup), '--threads', str(args.threads),
               '--device', args.device]
        out = subprocess.run(cmd, capture_output=True, text=True)
        if out.returncode:
            sys.exit(f'out_stride {s} failed:\n{out.stderr[-2000:]}')
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    load.append(os.getloadavg()[0])
    ref = rows[0]
    print(f'{osp.relpath(args.config, REPO)}: batch {args.batch_size}, {args.steps} steps, '
          f'{args.threads} threads, {args.device}; load {load[0]:.2f} -> {load[1]:.2f}')
    print('| out_stride | z grid | params (M) | step s | CPU s | peak MiB | step / ref | '
          'memory / ref |')
    print('|---|---|---|---|---|---|---|---|')
    for r in rows:
        r['step_ratio'] = round(r['step_s'] / ref['step_s'], 2)
        r['memory_ratio'] = (round(r['peak_mib'] / ref['peak_mib'], 2)
                             if ref['peak_mib'] else None)
        print(f"| {r['out_stride']} | {r['grid'][0]} x {r['grid'][1]} | {r['params_m']} | "
              f"{r['step_s']} | {r['cpu_s']} | {r['peak_mib']} | {r['step_ratio']} | "
              f"{r['memory_ratio']} |")
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(dict(config=args.config, load=load, rows=rows), f, indent=1)


if __name__ == '__main__':
    main()
