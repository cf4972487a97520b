"""GradCAMLocalizer: its map against Grad-CAM computed here with plain autograd."""
import cv2
import numpy as np
import pytest
import torch
from mmengine.registry import DefaultScope
from mmpretrain.structures import DataSample

import tedloc_mm  # noqa: F401
from tedloc_mm.registry import MODELS

K, SIZE = 4, 32


def build(**kw):
    torch.manual_seed(0)
    cfg = dict(type='GradCAMLocalizer',
               backbone=dict(type='ViTEVA02', img_size=SIZE, patch_size=8,
                             arch=dict(embed_dims=32, num_layers=2, num_heads=2,
                                       feedforward_channels=64),
                             out_type='avg_featmap', final_norm=False),
               head=dict(type='LinearClsHead', num_classes=K, in_channels=32), **kw)
    with DefaultScope.overwrite_default_scope('tedloc'):
        model = MODELS.build(cfg)
    model.init_weights()
    with torch.no_grad():  # a head with clearly different classes
        model.head.fc.weight.normal_(0, 1.0)
    return model.eval()


def hand_gradcam(model, x, label):
    """Grad-CAM (Selvaraju et al.) of one image (1, 3, S, S) for class ``label``.

    A: the last block's first norm output (``backbone.layers[-1].norm1``),
    patch tokens only, (C, h, w); weights = spatial mean of d logit / dA; map = ReLU of the
    weighted sum, min-max scaled, resized bilinearly to S x S (pytorch_grad_cam's recipe:
    scale then resize, and one more ReLU + min-max over the layer aggregate).
    """
    store = {}

    def hook(module, inp, out):
        out.retain_grad()
        store['a'] = out

    handle = model.backbone.layers[-1].norm1.register_forward_hook(hook)
    try:
        with torch.enable_grad():
            logits = model(x, mode='tensor')
            logits = logits[-1] if isinstance(logits, (tuple, list)) else logits
            logits[0, label].backward()
    finally:
        handle.remove()
    a, g = store['a'][0, 1:], store['a'].grad[0, 1:]     # (h*w, C), class token dropped
    side = int(round(a.shape[0]**0.5))
    weights = g.mean(dim=0)                               # (C,)
    cam = torch.relu(a @ weights).reshape(side, side).detach().double().numpy()

    def minmax(m):
        m = m - m.min()
        return m / (1e-7 + m.max())

    cam = cv2.resize(minmax(cam).astype(np.float32), (SIZE, SIZE))
    return minmax(np.maximum(cam, 0))


def images(n=3):
    g = torch.Generator().manual_seed(3)
    return torch.randn(n, 3, SIZE, SIZE, generator=g)


def samples(labels):
    return [DataSample(metainfo=dict(img_shape=(SIZE, SIZE))).set_gt_label(y)
            for y in labels]


@pytest.mark.parametrize('cam_class', ['gt', 'pred'])
def test_map_is_gradcam_of_the_chosen_class(cam_class):
    model = build(cam_class=cam_class)
    x = images()
    with torch.no_grad():
        pred = model(x, mode='tensor').argmax(1).tolist()
    gt = [(p + 1) % K for p in pred]  # labels that are never the prediction
    with torch.no_grad():  # as in the Runner's test loop
        out = model.predict(x, samples(gt))
    for i, ds in enumerate(out):
        assert ds.pred_label.tolist() == [pred[i]]
        cls = gt[i] if cam_class == 'gt' else pred[i]
        want = hand_gradcam(model, x[i:i + 1], cls)
        other = hand_gradcam(model, x[i:i + 1], pred[i] if cam_class == 'gt' else gt[i])
        assert ds.pred_map.shape == (SIZE, SIZE) and ds.pred_map.dtype == torch.float32
        np.testing.assert_allclose(ds.pred_map.numpy(), want, atol=1e-4)
        # and the two classes' maps do differ, so the comparison tells them apart
        assert np.abs(want - other).max() > 0.05
    # Grad-CAM's hooks are released after predict
    assert not model.backbone.layers[-1].norm1._forward_hooks


def test_pred_needs_no_labels_and_gt_does():
    x = images(2)
    out = build(cam_class='pred').predict(x, None)
    assert [ds.pred_map.shape for ds in out] == [(SIZE, SIZE)] * 2
    unlabelled = [DataSample(metainfo=dict(img_shape=(SIZE, SIZE))) for _ in range(2)]
    with pytest.raises(KeyError, match=r"cam_class='gt' needs gt_label.*\[0, 1\]"):
        build(cam_class='gt').predict(x, unlabelled)


def test_constructor_and_layer_errors():
    with pytest.raises(ValueError, match="cam_class must be 'gt' or 'pred'"):
        build(cam_class='label')
    model = build(target_layer='backbone.layers.7.norm1')
    with pytest.raises(ValueError, match=r"no submodule 'backbone.layers.7.norm1'"):
        model.predict(images(1), samples([0]))
    # a CNN has no default layer: the error says to give one
    with DefaultScope.overwrite_default_scope('tedloc'):
        cnn = MODELS.build(dict(type='GradCAMLocalizer',
                                backbone=dict(type='ResNet', depth=18),
                                neck=dict(type='GlobalAveragePooling'),
                                head=dict(type='LinearClsHead', num_classes=K,
                                          in_channels=512))).eval()
    with pytest.raises(ValueError, match='--target-layer backbone.layer4'):
        cnn.predict(images(1), samples([0]))
