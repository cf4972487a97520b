"""Load time of checkpoints through tedloc_mm's loader, against the loader it replaced.

Two files of realistic size, written to a temporary folder:
  * a Runner checkpoint: the state dict of the frozen EVA-02-L encoder (303 M values,
    the bulk of a full TeD-Loc checkpoint; ``--mparams`` scales it) plus a 6 M-value
    decoder with its SGD momentum, and the bookkeeping MMEngine's Runner saves, made with
    MMEngine's own objects (a ``MessageHub`` with ``HistoryBuffer`` histories of
    ``--iters`` iterations and a NumPy ``eta``, a ``MultiStepLR`` state, the meta);
  * a plain state dict (``{'state_dict': ...}``: a converted backbone, a lean or
    ``untrained.pth`` file) of the same tensors.

Loaders, each timed ``--repeats`` times on a file already in the page cache (median):
  * before: ``torch.load(weights_only=True)``, on ``UnpicklingError`` again with
    ``weights_only=False`` (tedloc_mm's loader until the allowlist; it reads a Runner
    checkpoint's tensors twice);
  * now: :func:`tedloc_mm.fileio.checkpoint.load_local_checkpoint` (``weights_only=True`` with the
    Runner's globals; one read).

    python benchmarks/checkpoint_loading.py [--mparams 303] [--iters 20000] [--repeats 5]
"""
import argparse
import os.path as osp
import pickle
import statistics
import tempfile
import time

import numpy as np
import torch

import tedloc_mm  # noqa: F401
from tedloc_mm.fileio.checkpoint import load_local_checkpoint


def loader_before(filename, map_location=None):
    """tedloc_mm's local checkpoint loader before the allowlist (kept here as the
    reference of the comparison)."""
    try:
        return torch.load(filename, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:
        return torch.load(filename, map_location=map_location, weights_only=False)


def encoder_state(mparams: float) -> dict:
    """EVA-02-L-like tensors: 24 blocks of attention + SwiGLU MLP, scaled to ``mparams``."""
    from mmpretrain.models.backbones import ViTEVA02
    if abs(mparams - 303) < 1:
        return {f'backbone.vit.{k}': v for k, v in ViTEVA02(arch='l').state_dict().items()}
    width = max(64, int(1024 * (mparams / 303) ** 0.5) // 64 * 64)  # head dim 64 (RoPE)
    vit = ViTEVA02(arch=dict(embed_dims=width, num_layers=24, num_heads=16,
                             feedforward_channels=int(width * 8 / 3)))
    return {f'backbone.vit.{k}': v for k, v in vit.state_dict().items()}


def runner_bookkeeping(trainable: dict, iters: int) -> dict:
    """message_hub, optimizer, param_schedulers and meta as MMEngine's Runner saves them."""
    from mmengine.logging import MessageHub
    from mmengine.optim import MultiStepLR
    hub = MessageHub.get_instance('checkpoint_loading_benchmark')
    rng = np.random.default_rng(0)
    for _ in range(iters):
        for key in ('train/loss', 'train/lr', 'train/time', 'train/data_time'):
            hub.update_scalar(key, float(rng.random()))
    hub.update_info('eta', np.float64(1234.5))
    hub.update_info('iter', iters)
    params = [torch.nn.Parameter(v.clone()) for v in trainable.values()]
    optimizer = torch.optim.SGD(params, lr=0.01, momentum=0.9)
    for p in params:
        p.grad = torch.ones_like(p)
    optimizer.step()
    scheduler = MultiStepLR(optimizer, milestones=[10], by_epoch=False)
    meta = dict(epoch=0, iter=iters, cfg='model = dict()\n' * 200, seed=0,
                experiment_name='bench', time='20260101_000000',
                mmengine_version='0.10.7', dataset_meta=dict(classes=tuple(
                    f'class{i}' for i in range(200))))
    return dict(meta=meta, message_hub=hub.state_dict(), optimizer=optimizer.state_dict(),
                param_schedulers=[scheduler.state_dict()])


def median_seconds(fn, path, repeats):
    fn(path)  # page cache, lazy imports
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(path)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--mparams', type=float, default=303, help='encoder size (M values)')
    p.add_argument('--iters', type=int, default=20000, help='logged iterations')
    p.add_argument('--repeats', type=int, default=5)
    args = p.parse_args()
    torch.manual_seed(0)
    encoder = encoder_state(args.mparams)
    decoder = {f'neck.conv{i}.weight': torch.randn(1000, 1000) for i in range(6)}
    state = {**encoder, **decoder}
    n_values = sum(v.numel() for v in state.values())
    n_tensors = len(state)
    with tempfile.TemporaryDirectory() as d:
        files = dict(runner=osp.join(d, 'iter_N.pth'), plain=osp.join(d, 'plain.pth'))
        torch.save(dict(state_dict=state, **runner_bookkeeping(decoder, args.iters)),
                   files['runner'])
        torch.save(dict(state_dict=state), files['plain'])
        del state, encoder
        print(f'{n_tensors} tensors: {n_values / 1e6:.0f} M values; '
              f'{args.iters} logged iterations; median of {args.repeats}')
        for kind, path in files.items():
            size = osp.getsize(path) / 2**20
            before = median_seconds(loader_before, path, args.repeats)
            now = median_seconds(load_local_checkpoint, path, args.repeats)
            print(f'{kind:6s} {size:8.0f} MiB   before {before:6.2f} s   now {now:6.2f} s   '
                  f'now / before {now / before:.2f}')


if __name__ == '__main__':
    main()
