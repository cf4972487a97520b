"""Every backbone family as TeD-Loc's frozen encoder: build, loss step, predict, frozen-ness.

Tiny configurations of the MMPretrain architectures (and of ours) at 64 px; the
expected strides are the architectures' own (by hand), the measured ones come from a
forward pass.
"""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope
from mmpretrain.structures import DataSample

import tedloc_mm  # noqa: F401
from tedloc_mm.apis import init_localizer
from tedloc_mm.engine.lean_checkpoint import restore_frozen_weights, strip_frozen_weights
from tedloc_mm.models.backbones import FrozenBackbone
from tedloc_mm.registry import MODELS
from tiny_tedloc import batch  # labels i % K are 0, 1 for both modules' K

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
K, D, SIZE = 3, 16, 64

VIT = dict(type='VisionTransformer', arch=dict(embed_dims=32, num_layers=1, num_heads=2,
                                              feedforward_channels=64),
           img_size=SIZE, patch_size=8, out_type='featmap')
RESNET18 = dict(type='ResNet', depth=18, stem_channels=8, base_channels=8, out_indices=(3, ))
RESNET50 = dict(type='ResNet', depth=50, stem_channels=8, base_channels=8, out_indices=(3, ))
CONVNEXT = dict(type='ConvNeXt', arch=dict(depths=[1, 1, 1, 1], channels=[8, 16, 24, 32]),
                out_indices=(3, ), gap_before_final_norm=False)
LITE0 = dict(type='EfficientNetLite', arch='lite0', out_indices=(8, ))

#: family -> (backbone config of TeDLoc, stride and channels by hand)
FAMILIES = {
    'vit': (dict(type='FrozenBackbone', backbone=VIT), 8, 32),
    'eva02': (dict(type='FrozenEVA', variant='eva02', patch_size=8, img_size=SIZE,
                   arch=dict(embed_dims=32, num_layers=1, num_heads=2,
                             feedforward_channels=64)), 8, 32),
    'resnet18': (dict(type='FrozenBackbone', backbone=RESNET18), 32, 64),
    'resnet50': (dict(type='FrozenBackbone', backbone=RESNET50), 32, 256),
    'convnext': (dict(type='FrozenBackbone', backbone=CONVNEXT), 32, 32),
    # ours, with its packaged ImageNet weights (read by init_weights)
    'efficientnet-lite0': (dict(type='FrozenBackbone', backbone=LITE0,
                                checkpoint='packaged'), 32, 1280),
    # ours, two stages fused: stage 5 (stride 16, 112) + stage 8 (stride 32, 1280)
    'efficientnet-lite0-concat': (dict(type='FrozenBackbone', fuse='concat',
                                       backbone=dict(LITE0, out_indices=(5, 8))),
                                  16, 1392),
}


def build_tedloc(backbone: dict):
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('tedloc'):
        model = MODELS.build(dict(
            type='TeDLoc', backbone=backbone,
            neck=dict(type='TeDLocDecoder', out_channels=D, out_stride=4, hidden_channels=8),
            head=dict(type='PatchMILHead', num_classes=K, in_channels=D,
                      anchor_embeddings=torch.randn(K, D))))
    model.init_weights()
    return model


@pytest.mark.parametrize('family', sorted(FAMILIES))
def test_family_trains_only_the_decoder_and_predicts(family):
    backbone, stride, channels = FAMILIES[family]
    model = build_tedloc(backbone)
    enc = model.backbone
    # declared == by hand == measured (a forward of a real-size batch)
    assert (enc.out_stride, enc.out_channels) == (stride, channels)
    with torch.no_grad():
        feat = enc(torch.zeros(1, 3, SIZE, SIZE))
    assert feat.shape == (1, channels, SIZE // stride, SIZE // stride)
    assert (model.neck.in_channels, model.neck.in_stride) == (channels, stride)

    # frozen: no trainable parameter, eval mode even after .train()
    assert not any(p.requires_grad for p in enc.parameters())
    model.train()
    assert not any(m.training for m in enc.modules())
    assert model.neck.training

    cfg = Config.fromfile(osp.join(ROOT, 'configs/_base_/schedules/sgd_50e_cub.py'))
    with DefaultScope.overwrite_default_scope('tedloc'):
        wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    in_optim = {id(p) for grp in wrapper.optimizer.param_groups for p in grp['params']}
    trainable = {n for n, p in model.named_parameters() if id(p) in in_optim}
    assert trainable and all(n.startswith(('neck.', 'head.')) for n in trainable)
    assert in_optim == {id(p) for p in model.parameters() if p.requires_grad}

    before = {k: v.clone() for k, v in model.state_dict().items()}
    losses = model(**batch(model, size=SIZE), mode='loss')
    assert set(losses) == {'loss_kd', 'loss_patch', 'loss_img'}
    assert all(torch.isfinite(v) for v in losses.values())
    wrapper.update_params(sum(losses.values()))
    after = model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert any(k.startswith('neck.') for k in changed)
    # nothing of the encoder moved: no weight and no BatchNorm running statistic
    assert not any(k.startswith('backbone.') for k in changed)

    model.eval()
    with torch.no_grad():
        out = model(**batch(model, n=1, size=SIZE), mode='predict')
    assert out[0].pred_map.shape == (SIZE, SIZE) and torch.isfinite(out[0].pred_map).all()
    assert out[0].pred_score.shape == (K, )


def test_cnn_at_a_size_not_a_multiple_of_its_stride():
    """72 px through ResNet (stride 32) gives 3 x 3 features (rounded up); z and the
    pseudo-label map are both 72 // 4 = 18 wide."""
    model = build_tedloc(FAMILIES['resnet18'][0])
    model.train()
    losses = model(**batch(model, size=72), mode='loss')
    assert all(torch.isfinite(v) for v in losses.values())
    model.eval()
    with torch.no_grad():
        logits, fg = model(torch.zeros(1, 3, 72, 72), mode='tensor')
    assert fg.shape == (1, 18, 18)


def _save_classifier(path, backbone: dict, seed: int) -> dict:
    """A full MMPretrain classifier checkpoint (``backbone.*``, ``head.fc.*``), as our
    stage-1 classifiers and MMPretrain's released ones are saved."""
    torch.manual_seed(seed)
    with DefaultScope.overwrite_default_scope('tedloc'):
        clf = MODELS.build(dict(type='ImageClassifier', backbone=backbone,
                                neck=dict(type='GlobalAveragePooling'),
                                head=dict(type='LinearClsHead', num_classes=K,
                                          in_channels=64)))
    clf.init_weights()
    for name, buf in clf.named_buffers():  # make running stats differ from the init
        if name.endswith('running_mean'):
            buf.normal_()
    torch.save(dict(meta=dict(epoch=1), state_dict=clf.state_dict()), path)
    return {k[len('backbone.'):]: v for k, v in clf.state_dict().items()
            if k.startswith('backbone.')}


def test_loads_a_full_classifier_checkpoint_with_prefix(tmp_path):
    path = str(tmp_path / 'resnet18_cls.pth')
    expected = _save_classifier(path, RESNET18, seed=3)
    enc = FrozenBackbone(RESNET18, checkpoint=path)
    enc.init_weights()
    got = enc.encoder.state_dict()
    assert set(got) == set(expected)
    assert all(torch.equal(got[k], expected[k]) for k in expected)
    # a bare backbone state dict (no prefix) loads too
    bare = str(tmp_path / 'bare.pth')
    torch.save(expected, bare)
    enc2 = FrozenBackbone(RESNET18, checkpoint=bare)
    enc2.init_weights()
    assert all(torch.equal(enc2.encoder.state_dict()[k], expected[k]) for k in expected)


def test_clear_errors(tmp_path):
    missing = str(tmp_path / 'convnext-b.pth')
    with pytest.raises(FileNotFoundError, match='convnext-b.pth.*Provide a local file'):
        FrozenBackbone(RESNET18, checkpoint=missing).init_weights()
    path = str(tmp_path / 'r18.pth')
    _save_classifier(path, RESNET18, seed=0)
    with pytest.raises(KeyError, match='missing keys'):  # ResNet-50 keys != ResNet-18's
        FrozenBackbone(dict(RESNET50), checkpoint=path).init_weights()
    with pytest.raises(ValueError, match='fuse'):
        FrozenBackbone(dict(RESNET18, out_indices=(2, 3)))
    with pytest.raises(ValueError, match="out_type='featmap'"):
        FrozenBackbone(dict(VIT, out_type='cls_token'))
    with pytest.raises(ValueError, match="not a \\(B, C, h, w\\) map"):  # pooled ConvNeXt
        FrozenBackbone(dict(CONVNEXT, gap_before_final_norm=True))
    with pytest.raises(ValueError, match='ships no weights'):
        FrozenBackbone(RESNET18, checkpoint='packaged')


def test_concat_fuses_stages_at_the_finest_resolution():
    enc = FrozenBackbone(dict(RESNET18, out_indices=(2, 3)), fuse='concat')
    assert (enc.out_stride, enc.out_channels) == (16, 32 + 64)
    x = torch.randn(1, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        s2, s3 = enc.encoder(x)
        z = enc(x)
    assert z.shape == (1, 96, 4, 4)
    torch.testing.assert_close(z[:, :32], s2)  # the finest map is kept as is
    torch.testing.assert_close(z[:, 32:], torch.nn.functional.interpolate(
        s3, size=(4, 4), mode='bilinear', align_corners=False))


def test_lean_checkpoint_and_init_localizer_with_a_frozen_backbone(tmp_path):
    src = str(tmp_path / 'r18_cls.pth')
    _save_classifier(src, RESNET18, seed=5)
    backbone = dict(type='FrozenBackbone', backbone=RESNET18, checkpoint=src)
    model = build_tedloc(backbone)  # init_weights reads src
    full = {k: v.clone() for k, v in model.state_dict().items()}

    # lean: strip the frozen weights, restore them from model.backbone.checkpoint
    ckpt = dict(state_dict=dict(full), meta={})
    n = strip_frozen_weights(model, ckpt)
    assert n > 0 and not any(k.startswith('backbone.') for k in ckpt['state_dict'])
    fresh = build_tedloc(dict(backbone, checkpoint=None))
    fresh.backbone.checkpoint = src
    assert restore_frozen_weights(fresh, ckpt)
    assert all(torch.equal(ckpt['state_dict'][k], full[k]) for k in full)

    # a full TeD-Loc checkpoint is testable without the backbone file
    ted = str(tmp_path / 'tedloc.pth')
    torch.save(dict(state_dict=full), ted)
    cfg = Config(dict(model=dict(
        type='TeDLoc', backbone=dict(backbone, checkpoint=str(tmp_path / 'gone.pth')),
        neck=dict(type='TeDLocDecoder', out_channels=D, out_stride=4, hidden_channels=8),
        head=dict(type='PatchMILHead', num_classes=K, in_channels=D,
                  anchor_embeddings=torch.randn(
                      K, D, generator=torch.Generator().manual_seed(1))))))
    loaded = init_localizer(cfg, ted)
    assert all(torch.equal(loaded.state_dict()[k], full[k]) for k in full)


def _config_model(path, tmp_path=None):
    cfg = Config.fromfile(osp.join(ROOT, path))
    k, d = cfg.model.head.num_classes, cfg.model.head.in_channels
    cfg.model.head.anchor_file = None
    cfg.model.head.anchor_embeddings = torch.randn(k, d, generator=torch.Generator().manual_seed(2))
    return cfg


@pytest.mark.parametrize('path,checkpoint,stride,channels,mean', [
    # random weights: building needs no file (the config names a local one)
    ('configs/tedloc_convnext-b_cub.py', None, 32, 1024, 123.675),
    # the packaged ImageNet weights, read from the installed package
    ('configs/_base_/models/tedloc_efficientnet-lite0.py', 'packaged', 32, 1280, 127.5)])
def test_configs_build_and_predict(path, checkpoint, stride, channels, mean):
    cfg = _config_model(path)
    if 'pseudo_label_stride' in cfg:  # the dataset base config's sampler stride
        assert cfg.pseudo_label_stride == cfg.model.neck.out_stride
    assert cfg.model.backbone.checkpoint not in (None, '')  # a real file in the config
    cfg.model.backbone.checkpoint = checkpoint
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('tedloc'):
        model = MODELS.build(cfg.model)
    # reads the packaged file; for the random one only the backbone's own init (not
    # MMEngine's logged init of all 89 M ConvNeXt-B values: 25 s here)
    model.backbone.init_weights()
    assert model.data_preprocessor.mean.flatten()[0] == pytest.approx(mean)
    assert (model.neck.in_channels, model.neck.in_stride) == (channels, stride)
    model.eval()
    size = 2 * stride
    img = torch.randint(0, 256, (3, size, size), dtype=torch.uint8)
    data = model.data_preprocessor(dict(inputs=[img], data_samples=[
        DataSample(metainfo=dict(img_shape=(size, size)))]), False)
    with torch.no_grad():
        feat = model.backbone(data['inputs'])
        out = model(**data, mode='predict')
    assert feat.shape == (1, channels, 2, 2)  # measured == declared
    assert out[0].pred_map.shape == (size, size) and torch.isfinite(out[0].pred_map).all()
    assert out[0].pred_score.shape == (cfg.model.head.num_classes, )


def test_swin_is_measured_not_taken_for_a_vit():
    """Swin has patch_embed and embed_dims like a ViT, but its stages downsample: the
    dry forward finds stride 4 * 2^3 = 32 and 16 * 2^3 = 128 channels."""
    swin = dict(type='SwinTransformer', img_size=SIZE, window_size=2, out_indices=(3, ),
                arch=dict(embed_dims=16, depths=[1, 1, 1, 1], num_heads=[1, 1, 1, 1]))
    with DefaultScope.overwrite_default_scope('tedloc'):
        enc = FrozenBackbone(swin)
    assert (enc.out_stride, enc.out_channels) == (32, 128)
    with torch.no_grad():
        assert enc(torch.zeros(1, 3, SIZE, SIZE)).shape == (1, 128, 2, 2)
