"""What each step of the paper's chain costs, measured on ``tools/reproduce_paper.py
--smoke`` (the paper config's model unchanged, random weights, tiny splits), and what a full
CUB / ILSVRC run therefore needs.

    python benchmarks/reproduce_cost.py [--work DIR]   # DIR: a finished --smoke DIR

Without ``--work`` it runs the smoke chain into a temporary folder first. Per step it prints
wall and CPU seconds (the step's process tree, user + system), peak resident memory, the
step's unit of work and CPU seconds per unit. Then, from these and the assumptions printed
with it (split sizes, epochs, templates, what a lean checkpoint holds), the full runs' disk
(CAM store, converted encoder, lean checkpoints) and work (forward passes per step), with
the CPU hours the measured per-unit costs give: an order of magnitude for planning; the
full runs are meant for GPUs. On a shared machine wall seconds depend on the other load
(the load average is printed); CPU seconds much less.
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys
import tempfile

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))

#: the full data sets and schedules (paper configs; CUB: 5994 train incl. nothing carved,
#: CUBV2 val 1000, test 5794; ILSVRC: 1.28 M train, ImageNetV2 val 10 k, 50 k test)
FULL = {
    'CUB': dict(train=5994, val=1000, test=5794, epochs=50, batch=16, classes=200,
                templates=2, text='ViT-L-14', encoder_mb=1213),
    'ILSVRC': dict(train=1281167, val=10000, test=50000, epochs=10, batch=32, classes=1000,
                   templates=8, text='ViT-H-14', encoder_mb=1213),
}
CAM_BYTES = 64 * 64 + 64  # one stored CAM (64 x 64 uint8) and its id line, about


def _lines(path):
    with open(path) as f:
        return sum(1 for line in f if line.strip())


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--work', help='a finished `tools/reproduce_paper.py --smoke DIR` folder')
    args = p.parse_args(argv)
    smoke = args.work
    if smoke is None:
        smoke = tempfile.mkdtemp(prefix='reproduce_smoke_')
        subprocess.run([sys.executable, 'tools/reproduce_paper.py', '--smoke', smoke],
                       cwd=REPO, check=True)
    work = osp.join(smoke, 'work')
    meta = osp.join(work, 'data', 'metadata')
    n = {s: _lines(osp.join(meta, s, 'image_ids.txt')) for s in ('train', 'val', 'test')}
    steps = {f[:-5]: json.load(open(osp.join(work, 'steps', f)))
             for f in os.listdir(osp.join(work, 'steps'))}
    epochs, batch = 2, 2  # the smoke schedule (tedloc_mm/workflow/smoke.py)
    iters = epochs * -(-n['train'] // batch)
    units = {
        'encoder': ('encoder file', 1),
        'anchors': ('prompt (200 classes x 2 templates)', 200 * 2),
        'cams': ('train image', n['train']),
        'train': (f'image ({iters} iterations x {batch} + {epochs} x {n["val"]} val)',
                  iters * batch + epochs * n['val']),
        'test_train': ('test image', n['test']),
    }
    print(f'smoke run {work}: splits {n}, {epochs} epochs of batch {batch}')
    print('| step | wall s | CPU s | peak MiB | load before | unit | CPU s / unit |')
    print('|---|---|---|---|---|---|---|')
    per_unit = {}
    for name in ('smoke_inputs', 'metadata', 'encoder', 'anchors', 'cams', 'train',
                 'test_train'):
        s = steps.get(name)
        if s is None:
            continue
        unit, count = units.get(name, ('step', 1))
        per_unit[name] = s['cpu_s'] / count
        print(f"| {name} | {s['wall_s']:.0f} | {s['cpu_s']:.0f} | {s['peak_rss_mib']:.0f} | "
              f"{s['load_before']:.1f} | {unit} | {per_unit[name]:.2f} |")
    ckpts = [osp.join(work, 'train', f) for f in os.listdir(osp.join(work, 'train'))
             if f.endswith('.pth')]
    lean_mb = max(os.path.getsize(c) for c in ckpts) / 2 ** 20
    print(f'\nlean checkpoint: {lean_mb:.0f} MiB (decoder, g, SGD momentum; no encoder)')
    print('\nfull runs (assumptions: the paper configs\' epochs and batch; 4 checkpoints '
          'kept = 3 last + best; CPU hours from the per-unit costs above, one process):')
    print('| data set | CAM store | encoder + checkpoints | CLIP-ES passes (fwd+bwd) | '
          'text prompts | EVA-L forwards train / val / test | iterations | CPU hours, upper bound |')
    print('|---|---|---|---|---|---|---|---|')
    for name, f in FULL.items():
        store_gb = f['train'] * CAM_BYTES / 1e9
        disk_gb = (f['encoder_mb'] + 4 * lean_mb) / 1024
        fwd_train, fwd_val = f['epochs'] * f['train'], f['epochs'] * f['val']
        its = f['epochs'] * -(-f['train'] // f['batch'])
        prompts = f['classes'] * f['templates']
        hours = (per_unit.get('cams', 0) * f['train'] + per_unit.get('anchors', 0) * prompts
                 + per_unit.get('train', 0) * (fwd_train + fwd_val)
                 + per_unit.get('test_train', 0) * f['test']) / 3600
        print(f"| {name} | {store_gb:.2f} GB | {disk_gb:.1f} GB | {f['train']:,} | "
              f"{prompts:,} ({f['text']}) | {fwd_train:,} / {fwd_val:,} / {f['test']:,} | "
              f'{its:,} | {hours:,.0f} |')


if __name__ == '__main__':
    main()
