"""The paper configs and their variants: batch per process, the authors' protocol and
optimizer, the ablation configs (paper Tables 2, 4, 5) and the demo's ablation configs.

Every config in the package loads; every config whose name says N x M (``8xb4``) trains
at N x M = the paper's batch for its data set.
"""
import os
import os.path as osp
import re

import pytest
import torch
from mmengine.config import Config

import tedloc_mm  # noqa: F401

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = osp.join(ROOT, 'tedloc_mm', 'configs')
#: "a batch size of 32 and 16 for ILSVRC and CUB, respectively" (paper §4.1)
PAPER_BATCH = dict(cub=16, ilsvrc=32)


def all_configs():
    out = []
    for root, dirs, files in os.walk(CONFIGS):
        dirs[:] = [d for d in dirs if d != '_base_']
        out += [osp.relpath(osp.join(root, f), CONFIGS) for f in files if f.endswith('.py')]
    return sorted(out)


def load(rel):
    return Config.fromfile(osp.join(CONFIGS, rel))


def test_every_config_loads():
    names = all_configs()
    assert len(names) >= 38
    for rel in names:
        load(rel)


def test_every_n_x_m_name_trains_at_the_papers_batch():
    checked = {k: 0 for k in PAPER_BATCH}
    for rel in all_configs():
        m = re.search(r'_(\d+)xb(\d+)[-_]', osp.basename(rel))
        if m is None:
            continue
        data = osp.basename(rel)[:-3].rsplit('_', 1)[1]
        n, per_gpu = int(m.group(1)), int(m.group(2))
        assert n * per_gpu == PAPER_BATCH[data], rel
        cfg = load(rel)
        assert cfg.train_dataloader.batch_size == per_gpu, rel
        assert cfg.auto_scale_lr.base_batch_size == PAPER_BATCH[data], rel
        checked[data] += 1
    assert checked == dict(cub=3, ilsvrc=3)
    for data, batch in PAPER_BATCH.items():  # the paper configs: one process
        cfg = load(f'tedloc_eva-l_{data}.py')
        assert cfg.train_dataloader.batch_size == cfg.auto_scale_lr.base_batch_size == batch


@pytest.mark.parametrize('data,epochs', [('cub', 50), ('ilsvrc', 10)])
def test_paper_configs_encoder_protocol_and_optimizer(data, epochs):
    from tedloc_mm.evaluation import WSOLMetric
    cfg = load(f'tedloc_eva-l_{data}.py')
    bb = cfg.model.backbone
    assert (bb.type, bb.variant, bb.arch, bb.img_size, bb.patch_size) == (
        'FrozenEVA', 'eva01', 'l', 224, 14)
    assert bb.checkpoint == 'checkpoints/eva-l-p14-196-in21k-in1k_mmpretrain.pth'
    # the authors' selection (MaxBoxAcc) and CAM-curve intervals (val 0.004, test 0.001)
    assert cfg.default_hooks.checkpoint.save_best == 'wsol/MaxBoxAcc'
    assert len(WSOLMetric(**{k: v for k, v in cfg.test_evaluator.items()
                             if k != 'type'}).thresholds) == 1000
    assert len(WSOLMetric(**{k: v for k, v in cfg.val_evaluator.items()
                             if k != 'type'}).thresholds) == 250
    assert cfg.test_evaluator.eval_size == cfg.val_evaluator.eval_size == 256
    assert cfg.train_cfg.max_epochs == epochs and cfg.train_cfg.val_interval == 1
    opt = cfg.optim_wrapper.optimizer
    assert (opt.type, opt.lr, opt.momentum, opt.weight_decay, opt.nesterov) == (
        'SGD', 0.01, 0.9, 1e-4, True)
    # the lr per epoch, by hand: 0.01 x 0.9 per 15 epochs (constant over ILSVRC's 10)
    from mmengine.optim.scheduler import StepLR
    sched_cfg = dict(cfg.param_scheduler[0])
    assert sched_cfg.pop('type') == 'StepLR'
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=opt.lr)
    sched = StepLR(optimizer, **sched_cfg)
    lrs = []
    for _ in range(epochs):
        lrs.append(optimizer.param_groups[0]['lr'])
        optimizer.step()
        sched.step()
    want = {'cub': [0.01] * 15 + [0.009] * 15 + [0.0081] * 15 + [0.00729] * 5,
            'ilsvrc': [0.01] * 10}[data]
    assert lrs == pytest.approx(want)


def test_eva02_variants_name_a_classification_checkpoint():
    for data in PAPER_BATCH:
        cfg = load(f'tedloc_eva02-l_{data}.py')
        assert cfg.model.backbone.variant == 'eva02'
        assert cfg.model.backbone.checkpoint.endswith('eva02-l-p14-in1k_mmpretrain.pth')


def _head_delta(rel, base_rel):
    head, base = load(rel).model.head, load(base_rel).model.head
    assert set(head) == set(base)
    return {k: head[k] for k in head if head[k] != base[k]}


@pytest.mark.parametrize('rel,base,delta', [
    ('ablations/tedloc_eva-l_lkd_cub.py', 'tedloc_eva-l_cub.py',
     dict(lambda_patch=0.0, lambda_img=0.0, map_type='anchor', anchor_map_label='gt')),
    ('ablations/tedloc_eva-l_lkd-pcl_cub.py', 'tedloc_eva-l_cub.py', dict(lambda_img=0.0)),
    ('ablations/tedloc_eva-l_no-qr_cub.py', 'tedloc_eva-l_cub.py',
     dict(orthogonalization='none')),
    ('ablations/tedloc_eva-l_gt-anchor-map_cub.py', 'tedloc_eva-l_cub.py',
     dict(map_type='anchor', anchor_map_label='gt')),
    ('ablations/tedloc_eva-l_gt-anchor-map_ilsvrc.py', 'tedloc_eva-l_ilsvrc.py',
     dict(map_type='anchor', anchor_map_label='gt')),
    ('demo/ablations/tedloc_efficientnet-lite0_lkd_stamps.py',
     'demo/tedloc_efficientnet-lite0_stamps.py',
     dict(lambda_patch=0.0, lambda_img=0.0, map_type='anchor', anchor_map_label='gt')),
    ('demo/ablations/tedloc_efficientnet-lite0_lkd-pcl_stamps.py',
     'demo/tedloc_efficientnet-lite0_stamps.py', dict(lambda_img=0.0)),
    ('demo/ablations/tedloc_efficientnet-lite0_no-qr_stamps.py',
     'demo/tedloc_efficientnet-lite0_stamps.py', dict(orthogonalization='none')),
    ('demo/ablations/tedloc_efficientnet-lite0_gt-anchor-map_stamps.py',
     'demo/tedloc_efficientnet-lite0_stamps.py',
     dict(map_type='anchor', anchor_map_label='gt')),
])
def test_ablation_configs_change_only_their_row(rel, base, delta):
    assert _head_delta(rel, base) == delta
    cfg, ref = load(rel), load(base)
    # everything outside the head is the base config's (the demo's recipe may change:
    # the ablations inherit it instead of copying it)
    for key in set(cfg) | set(ref):
        if key != 'model':
            assert cfg.get(key) == ref.get(key), (rel, key)
    assert {k: v for k, v in cfg.model.items() if k != 'head'} == \
        {k: v for k, v in ref.model.items() if k != 'head'}
    with open(osp.join(CONFIGS, rel)) as f:
        assert f"_base_ = ['../{osp.basename(base)}']" in f.read()
