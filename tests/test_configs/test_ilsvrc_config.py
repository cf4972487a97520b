"""configs/tedloc_eva-l_ilsvrc.py (K = 1000, D = 1024) builds and trains one step.

The backbone is swapped for a tiny random EVA-01 (EVA-L at 224 px takes ~30 s a step
here, see test_model_eva_l_config.py); everything else is the config's own: the
1024-wide decoder, the 1000-class head with QR anchors from an anchor file (written
here with random 1024-d embeddings, the width of open_clip ViT-H-14's text tower),
the optimizer and the training pipeline's transforms.
"""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope
from mmpretrain.structures import DataSample

import tedloc_mm  # noqa: F401
from tedloc_mm.engine.runner_config import build_runner_config
from tedloc_mm.fileio import save_anchor_file
from tedloc_mm.registry import MODELS, TRANSFORMS

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(ROOT, 'configs/tedloc_eva-l_ilsvrc.py')
TINY_EVA = dict(arch=dict(embed_dims=64, num_layers=1, num_heads=2,
                          feedforward_channels=128), img_size=56, checkpoint=None)


def tiny_cfg(anchor_file):
    cfg = Config.fromfile(CONFIG)
    cfg.model.backbone.update(TINY_EVA)
    cfg.model.neck.in_channels = 64
    cfg.model.head.anchor_file = anchor_file
    return cfg


def write_anchors(path, k, d):
    save_anchor_file(path, torch.randn(k, d, generator=torch.Generator().manual_seed(0)),
                     [f'n{i:08d}' for i in range(k)], 'random', 'random-init', ['{}'])


def test_config_values():
    cfg = build_runner_config(CONFIG)
    assert (cfg.model.head.num_classes, cfg.model.head.in_channels,
            cfg.model.neck.out_channels) == (1000, 1024, 1024)
    assert cfg.model.head.orthogonalization == 'qr'
    assert cfg.train_dataloader.batch_size == 32 and cfg.auto_scale_lr.base_batch_size == 32
    assert cfg.train_cfg.max_epochs == 10
    sampler = [t for t in cfg.train_dataloader.dataset.pipeline
               if t.type == 'PseudoLabelSampler'][0]
    assert sampler.grid_stride == cfg.model.neck.out_stride == 4
    with DefaultScope.overwrite_default_scope('tedloc'):
        for pipeline in (cfg.train_dataloader.dataset.pipeline,
                         cfg.test_dataloader.dataset.pipeline):
            for t in pipeline:  # every transform builds (LoadCAM needs no store yet)
                TRANSFORMS.build(t)


def test_one_training_step_k1000_d1024(tmp_path):
    anchors = str(tmp_path / 'ilsvrc_anchors.pth')
    write_anchors(anchors, 1000, 1024)
    cfg = tiny_cfg(anchors)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    a = model.head.anchors
    assert a.shape == (1000, 1024)
    # QR: K = 1000 orthonormal anchors in R^1024
    torch.testing.assert_close(a @ a.T, torch.eye(1000), atol=1e-4, rtol=0)
    with DefaultScope.overwrite_default_scope('tedloc'):
        wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    size, hw = 56, 56 // cfg.model.neck.out_stride
    samples = []
    for i, label in enumerate((3, 999)):
        ds = DataSample(metainfo=dict(img_shape=(size, size), img_id=f'im{i}'))
        ds.set_gt_label(label)
        plm = torch.full((hw, hw), -1, dtype=torch.long)
        plm[4:9, 4:9] = 1
        plm[:2, :2] = 0
        ds.pseudo_label_map = plm
        samples.append(ds)
    imgs = [torch.randint(0, 256, (3, size, size), dtype=torch.uint8) for _ in range(2)]
    data = model.data_preprocessor(dict(inputs=imgs, data_samples=samples), True)
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    losses = model(**data, mode='loss')
    assert set(losses) == {'loss_kd', 'loss_patch', 'loss_img'}
    assert all(torch.isfinite(v) for v in losses.values())
    # at init f(h, .) is close to uniform over 1000 classes: CE near log(1000)
    assert abs(float(losses['loss_img']) - torch.log(torch.tensor(1000.))) < 1.0
    wrapper.update_params(sum(losses.values()))
    after = model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert 'head.fg_classifier.weight' in changed and any(k.startswith('neck.')
                                                          for k in changed)
    assert not any(k.startswith('backbone.') or k == 'head.anchors' for k in changed)
    model.eval()
    with torch.no_grad():
        out = model(**data, mode='predict')
    assert out[0].pred_score.shape == (1000, ) and out[0].pred_map.shape == (size, size)


def test_narrow_text_tower_cannot_give_1000_qr_anchors(tmp_path):
    """The config's comment: a 768-wide tower (ViT-L-14) cannot hold 1000 QR anchors."""
    anchors = str(tmp_path / 'vit-l-14.pth')
    write_anchors(anchors, 1000, 768)
    cfg = tiny_cfg(anchors)
    cfg.model.neck.out_channels = cfg.model.head.in_channels = 768
    with pytest.raises(ValueError, match=r'1000.*768|768.*1000'):
        MODELS.build(cfg.model)
