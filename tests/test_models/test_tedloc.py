"""TeDLoc end to end on a tiny EVA: modes, what trains, the optimizer, the decoder."""
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope
from mmpretrain.structures import DataSample

import tedloc_mm  # noqa: F401
from tedloc_mm.models import TeDLocDecoder
from tedloc_mm.registry import MODELS
from tiny_tedloc import D, K, batch, tiny_model

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def trainable_names(model):
    return {n for n, p in model.named_parameters() if p.requires_grad}


def test_only_decoder_and_g_require_grad():
    model = tiny_model()
    names = trainable_names(model)
    assert names and all(n.startswith(('neck.', 'head.fg_classifier.')) for n in names)
    assert {n for n, _ in model.named_parameters() if n.startswith('neck.')} <= names


def test_loss_backward_reaches_only_decoder_and_g():
    model = tiny_model()
    model.train()
    assert not any(m.training for m in model.backbone.vit.modules())
    losses = model(**batch(model), mode='loss')
    assert set(losses) == {'loss_kd', 'loss_patch', 'loss_img'}
    sum(losses.values()).backward()
    for n, p in model.named_parameters():
        if n.startswith(('neck.', 'head.fg_classifier.')):
            assert p.grad is not None and p.grad.abs().sum() > 0, n
        else:
            assert p.grad is None, n


def test_optimizer_sees_only_trainable_and_step_leaves_frozen_unchanged():
    model = tiny_model()
    cfg = Config.fromfile(osp.join(ROOT, 'configs/_base_/schedules/sgd_50e_cub.py'))
    with DefaultScope.overwrite_default_scope('tedloc'):
        wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    in_optim = {id(p) for grp in wrapper.optimizer.param_groups for p in grp['params']}
    assert in_optim == {id(p) for p in model.parameters() if p.requires_grad}
    assert isinstance(wrapper.optimizer, torch.optim.SGD)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.train()
    wrapper.update_params(sum(model(**batch(model), mode='loss').values()))
    after = model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert any(k.startswith('neck.') for k in changed)
    assert 'head.fg_classifier.weight' in changed
    assert not any(k.startswith('backbone.') or k == 'head.anchors' for k in changed)


def test_predict_fields_and_tensor_mode():
    """predict / tensor outputs against Eq. 3-4 recomputed here with plain torch ops."""
    model = tiny_model(logit_scale=3.0)
    model.eval()
    data = batch(model, n=3)
    with torch.no_grad():
        out = model(**data, mode='predict')
        logits, fg = model(data['inputs'], mode='tensor')
        z = model.neck(model.backbone(data['inputs']))  # (B, D, 16, 16)
    assert len(out) == 3 and logits.shape == (3, K) and fg.shape == (3, 16, 16)
    w = model.head.fg_classifier.weight.detach().reshape(D).double()
    b = float(model.head.fg_classifier.bias)
    anchors = model.head.anchors.double()  # (K, D), the frozen buffer
    for i, ds in enumerate(out):
        zi = z[i].double().reshape(D, -1)                  # (D, P)
        g = 1 / (1 + torch.exp(-(w @ zi + b)))             # g(z_p), (P,)
        a = g / g.sum()                                    # Eq. 3 weights
        h = (zi * a).sum(dim=1)                            # h = sum_p a_p z_p, (D,)
        f = 3.0 * (anchors @ h)                            # f(h, t_k) = s <h, t_k>, (K,)
        score = torch.exp(f - f.max())
        score = score / score.sum()                        # softmax over K (Eq. 4)
        torch.testing.assert_close(logits[i].double(), f, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(torch.sigmoid(fg[i]).double().flatten(), g,
                                   atol=1e-6, rtol=1e-5)
        assert ds.pred_score.shape == (K,)
        torch.testing.assert_close(ds.pred_score.double(), score, atol=1e-6, rtol=1e-5)
        assert ds.pred_label.tolist() == [int(score.argmax())]
        # the map: g on the 16 x 16 grid, bilinearly resized to the 64 x 64 input
        # (OpenCV's INTER_LINEAR uses the same half-pixel centres)
        want = cv2.resize(g.reshape(16, 16).float().numpy(), (64, 64),
                          interpolation=cv2.INTER_LINEAR)
        assert ds.pred_map.shape == (64, 64)
        np.testing.assert_allclose(ds.pred_map.numpy(), want, atol=1e-5)


def test_data_preprocessor_is_clip():
    model = tiny_model()
    pre = model.data_preprocessor
    torch.testing.assert_close(pre.mean.flatten(), torch.tensor(
        [0.48145466, 0.4578275, 0.40821073]) * 255)
    torch.testing.assert_close(pre.std.flatten(), torch.tensor(
        [0.26862954, 0.26130258, 0.27577711]) * 255)
    # BGR input is flipped to RGB before normalisation
    img = torch.zeros(3, 8, 8, dtype=torch.uint8)
    img[0] = 255  # blue channel in BGR
    x = pre(dict(inputs=[img], data_samples=[DataSample()]), False)['inputs']
    assert x[0, 2].mean() > 0 and x[0, 0].mean() < 0


# (encoder stride, decoder stride, encoder map side, z side, upsampling stages), all by
# hand: z side = map side * in_stride / out_stride, stages = ceil(log2(in / out))
@pytest.mark.parametrize('in_stride,stride,feat,out,stages', [
    (14, 4, 16, 56, 2),    # EVA-L at 224 px: 16 tokens -> 56 (3.5 px per token)
    (14, 14, 16, 16, 0),
    (14, 1, 16, 224, 4),
    (8, 4, 8, 16, 1),
    (14, 7, 16, 32, 1),
    (32, 4, 7, 56, 3),     # last CNN stage (ResNet / ConvNeXt / EfficientNet) at 224 px
    (16, 4, 14, 56, 2),    # the stage before it
    (32, 32, 7, 7, 0),
    (32, 8, 2, 8, 2)])
def test_decoder_output_stride(in_stride, stride, feat, out, stages):
    dec = TeDLocDecoder(in_channels=8, out_channels=6, in_stride=in_stride,
                        out_stride=stride, hidden_channels=4)
    assert dec.out_stride == stride and dec.num_stages == stages
    assert len(dec.stages) == stages
    z = dec(torch.randn(2, 8, feat, feat, generator=torch.Generator().manual_seed(0)))
    assert z.shape == (2, 6, out, out)


@pytest.mark.parametrize('in_stride,stride,input_hw,feat_hw,out_hw', [
    # a CNN rounds odd sizes up: 72 px at stride 32 gives 3 rows (72 / 32 = 2.25); z
    # must still be 72 // 4 = 18 rows, the pseudo-label sampler's size (3 * 32 / 4 = 24
    # would not be)
    (32, 4, (72, 100), (3, 4), (18, 25)),
    (14, 4, (224, 224), (16, 16), (56, 56)),
    (16, 16, (70, 70), (5, 5), (4, 4))])
def test_decoder_output_follows_the_input_size(in_stride, stride, input_hw, feat_hw, out_hw):
    dec = TeDLocDecoder(in_channels=8, out_channels=6, in_stride=in_stride,
                        out_stride=stride, hidden_channels=4)
    z = dec(torch.randn(1, 8, *feat_hw, generator=torch.Generator().manual_seed(1)),
            input_hw=input_hw)
    assert tuple(z.shape[-2:]) == out_hw


def test_decoder_patch_size_is_the_old_name_of_in_stride():
    dec = TeDLocDecoder(in_channels=8, out_channels=6, patch_size=14, out_stride=4)
    assert dec.in_stride == 14 and dec.num_stages == 2
    with pytest.raises(ValueError, match='patch_size'):
        TeDLocDecoder(in_channels=8, out_channels=6, in_stride=16, patch_size=14)
    with pytest.raises(ValueError, match='in_stride'):
        TeDLocDecoder(in_channels=8, out_channels=6)


def test_tedloc_takes_the_decoder_input_from_the_backbone():
    torch.manual_seed(0)
    cfg = dict(type='TeDLoc',
               backbone=dict(type='FrozenEVA', patch_size=8, img_size=64,
                             arch=dict(embed_dims=64, num_layers=1, num_heads=4,
                                       feedforward_channels=128)),
               neck=dict(type='TeDLocDecoder', out_channels=D, out_stride=4,
                         hidden_channels=16),
               head=dict(type='PatchMILHead', num_classes=K, in_channels=D,
                         anchor_embeddings=torch.randn(K, D)))
    model = MODELS.build(cfg)
    assert (model.neck.in_channels, model.neck.in_stride) == (64, 8)
    cfg['neck'] = dict(cfg['neck'], in_channels=32)
    with pytest.raises(ValueError, match='in_channels=32'):
        MODELS.build(cfg)
    cfg['neck'] = dict(cfg['neck'], in_channels=64, patch_size=14)
    with pytest.raises(ValueError, match='in_stride=14'):
        MODELS.build(cfg)


def test_decoder_rejects_bad_stride():
    with pytest.raises(ValueError, match='out_stride'):
        TeDLocDecoder(in_channels=8, out_channels=6, in_stride=8, out_stride=16)


def test_decoder_reduce_channels_is_a_1x1_stage_at_the_encoder_resolution():
    torch.manual_seed(0)
    dec = TeDLocDecoder(in_channels=8, out_channels=6, in_stride=16, out_stride=8,
                        hidden_channels=5, reduce_channels=3)
    for bn in (dec.reduce.bn, dec.stages[0].bn):  # non-trivial eval-mode statistics
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
        bn.weight.data.uniform_(0.5, 2)
        bn.bias.data.uniform_(-1, 1)
    dec.eval()
    assert dec.stages[0].conv.in_channels == 3
    x = torch.randn(2, 8, 4, 4)

    def conv_bn_gelu(m, y, padding):
        y = F.conv2d(y, m.conv.weight, m.conv.bias, padding=padding)
        y = F.batch_norm(y, m.bn.running_mean, m.bn.running_var, m.bn.weight, m.bn.bias,
                         training=False, eps=m.bn.eps)
        return F.gelu(y)

    # by hand: LN over channels, the 1x1 reduction at 4 x 4 (GELU does not commute
    # with the resize, so reducing after it would differ), resize to 8 x 8, 3x3 stage,
    # 1x1 projection
    y = F.layer_norm(x.permute(0, 2, 3, 1), (8, ), dec.in_norm.weight,
                     dec.in_norm.bias, dec.in_norm.eps).permute(0, 3, 1, 2)
    y = conv_bn_gelu(dec.reduce, y, 0)
    y = F.interpolate(y, size=(8, 8), mode='bilinear', align_corners=False)
    y = conv_bn_gelu(dec.stages[0], y, 1)
    y = F.conv2d(y, dec.proj.weight, dec.proj.bias)
    with torch.no_grad():
        assert torch.allclose(dec(x), y, atol=1e-5)
    # parameters: + 8*3 (1x1 conv, no bias before a norm) + 2*3 (BN); the 3x3 stage
    # reads 3 channels instead of 8
    base = TeDLocDecoder(in_channels=8, out_channels=6, in_stride=16, out_stride=8,
                         hidden_channels=5)
    n = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert n(dec) - n(base) == (8 * 3 + 2 * 3) + (3 - 8) * 5 * 9
    with pytest.raises(ValueError, match='reduce_channels'):
        TeDLocDecoder(in_channels=8, out_channels=6, in_stride=16, reduce_channels=0)
