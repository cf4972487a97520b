"""The real configuration (EVA-01-L/14, 224 px, frozen) builds and runs on the CPU.

Slow (about a minute on 2 cores): one loss step (forward, backward, SGD update) and one
predict, random EVA weights and random anchors (no files can be downloaded here).
Prints parameter counts and timings (run with ``-s`` to see them).
"""
import os.path as osp
import time

import pytest
import torch
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope
from mmpretrain.structures import DataSample

import tedloc_mm  # noqa: F401
from tedloc_mm.engine.runner_config import build_runner_config
from tedloc_mm.fileio import save_anchor_file
from tedloc_mm.registry import MODELS

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(ROOT, 'configs/tedloc_eva-l_cub.py')


def count(params):
    params = list(params)
    return sum(p.numel() for p in params), sum(p.numel() for p in params if p.requires_grad)


@pytest.mark.slow
def test_eva_l_config_loss_step_and_predict(tmp_path):
    cfg = build_runner_config(CONFIG)  # the full config as tools/train.py reads it
    used = 'configs/tedloc_eva-l_cub.py'
    K, d = cfg.model.head.num_classes, cfg.model.head.in_channels
    assert (K, d) == (200, 768) and cfg.model.backbone.arch == 'l'
    # one source: the sampler samples on the decoder's grid
    assert [t for t in cfg.train_dataloader.dataset.pipeline
            if t.type == 'PseudoLabelSampler'][0].grid_stride == cfg.model.neck.out_stride
    anchors = str(tmp_path / 'anchors.pth')
    save_anchor_file(anchors, torch.randn(K, d, generator=torch.Generator().manual_seed(0)),
                     [f'c{k}' for k in range(K)], 'random', 'random-init', ['{}'])
    cfg.model.backbone.checkpoint = None
    cfg.model.head.anchor_file = anchors
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    with DefaultScope.overwrite_default_scope('tedloc'):
        wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    total, trainable = count(model.parameters())
    head_total, head_trainable = count(list(model.neck.parameters()) +
                                       list(model.head.parameters()))
    assert trainable == head_trainable == head_total
    assert total - head_total == sum(p.numel() for p in model.backbone.parameters())

    size = 224
    hw = size // model.out_stride
    assert hw == 56
    ds = DataSample(metainfo=dict(img_shape=(size, size), img_id='x')).set_gt_label(3)
    plm = torch.full((hw, hw), -1, dtype=torch.long)
    plm[20:30, 20:30] = 1
    plm[:5, :5] = 0
    ds.pseudo_label_map = plm
    img = torch.randint(0, 256, (3, size, size), dtype=torch.uint8)
    data = model.data_preprocessor(dict(inputs=[img], data_samples=[ds]), True)

    model.train()
    before = model.head.fg_classifier.weight.detach().clone()
    t0 = time.perf_counter()
    losses = model(**data, mode='loss')
    t_fwd = time.perf_counter() - t0
    wrapper.update_params(sum(losses.values()))
    t_step = time.perf_counter() - t0
    assert all(torch.isfinite(v) for v in losses.values())
    assert not torch.equal(before, model.head.fg_classifier.weight)

    model.eval()
    t0 = time.perf_counter()
    with torch.no_grad():
        out = model(**data, mode='predict')[0]
    t_pred = time.perf_counter() - t0
    assert out.pred_score.shape == (K,) and out.pred_map.shape == (size, size)
    assert torch.isfinite(out.pred_map).all()
    print(f'\n[{used}] EVA-L TeD-Loc: total {total / 1e6:.2f} M params, trainable '
          f'{trainable / 1e6:.2f} M; decoder+head {head_total / 1e6:.2f} M '
          f'(trainable {head_trainable / 1e6:.2f} M); loss forward {t_fwd:.1f} s, '
          f'loss step {t_step:.1f} s, predict {t_pred:.1f} s (batch 1, {size} px, CPU)')
