"""ClassifierGradCAM cuts the graph at its target layer: same CAMs as plain
pytorch_grad_cam, and no backward pass below the layer."""
import numpy as np
import pytest
import torch
from pytorch_grad_cam import GradCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

from tedloc_mm.pseudo_labels.classifier_cam import ClassifierGradCAM, _Logits
from tedloc_mm.registry import MODELS, build


def _classifier():
    torch.manual_seed(0)
    # in our scope whatever default scope an earlier test left current
    return build(MODELS, dict(
        type='ImageClassifier',
        backbone=dict(type='ResNet', depth=18, out_indices=(3, )),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=3, in_channels=512))).eval()


def test_cut_gives_the_same_cams_without_backward_below_the_layer():
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    labels = [0, 2]
    model = _classifier()
    layer = model.backbone.layer4
    reference = GradCAM(_Logits(model).eval(), [layer])(
        input_tensor=x, targets=[ClassifierOutputTarget(y) for y in labels])
    model.zero_grad(set_to_none=True)

    gradcam = ClassifierGradCAM(model, 'backbone.layer4')
    cams = gradcam(x, labels)
    np.testing.assert_allclose(cams, reference, atol=1e-6)
    assert cams.std() > 0.01  # a real map, not a constant
    # below the layer nothing got a gradient; after it (the head) did
    assert model.backbone.conv1.weight.grad is None
    assert model.backbone.layer3[0].conv1.weight.grad is None
    assert model.head.fc.weight.grad is not None
    gradcam.release()
    assert not layer._forward_hooks  # the model is left as it was


def _scale(c):
    c = c - c.reshape(len(c), -1).min(1)[:, None, None]
    return c / (c.reshape(len(c), -1).max(1)[:, None, None] + 1e-7)


def test_several_target_layers_average_the_single_layer_maps():
    """pytorch_grad_cam's aggregation: mean of the per-layer normalised maps,
    normalised again; the cut goes below both layers, so the lower one's map is real."""
    x = torch.randn(2, 3, 64, 64)
    labels = [1, 2]
    model = _classifier()
    single = {}
    for name in ('backbone.layer3', 'backbone.layer4'):
        g = ClassifierGradCAM(model, name)
        single[name] = g(x, labels)
        g.release()
        model.zero_grad(set_to_none=True)
    assert single['backbone.layer3'].std() > 0.01
    g = ClassifierGradCAM(model, ['backbone.layer4', 'backbone.layer3'])
    both = g(x, labels)
    g.release()
    want = _scale((single['backbone.layer3'] + single['backbone.layer4']) / 2)
    # not exact: pytorch_grad_cam averages each layer's map as resized (its maximum
    # 0.9999 after cv2.resize), a single-layer result is normalised once more
    np.testing.assert_allclose(both, want, atol=5e-3)
    assert np.abs(both - single['backbone.layer4']).max() > 0.1  # layer3 counts
    assert model.backbone.layer2[0].conv1.weight.grad is None  # cut below layer3


def test_affinity_refinement_spreads_the_map_over_the_feature_similar_region():
    """Features: the left half of an 8 x 8 grid is one 'object' (one direction, small
    noise), the right half another. A Grad-CAM peak on a corner of the left half is
    spread by the refinement over the whole left half and stays off the right half."""
    model = _classifier()
    g = ClassifierGradCAM(model, 'backbone.layer4', affinity_layers=['backbone.layer3'])
    gen = torch.Generator().manual_seed(0)
    feats = torch.zeros(1, 16, 8, 8)
    feats[:, 0, :, :4] = 1.0
    feats[:, 1, :, 4:] = 1.0
    feats += 0.05 * torch.randn(feats.shape, generator=gen)
    cam = np.zeros((1, 64, 64), np.float32)
    cam[0, 8:24, 4:20] = 1.0  # inside the left half's top rows
    refined = g.refine(cam, feats)
    g.release()
    assert refined.shape == (1, 64, 64) and refined.max() == pytest.approx(1.0, abs=2e-3)
    left, right = refined[0, :, 4:28], refined[0, :, 36:60]  # away from the seam
    assert left.min() > 0.8          # the whole left half, not only the peak's corner
    assert right.max() < 0.05        # nothing leaks to the other region
    assert cam[0, :, 4:28].min() == 0  # (the Grad-CAM itself covered only a corner)


def test_affinity_features_are_read_from_the_forward_pass():
    x = torch.randn(2, 3, 64, 64)
    model = _classifier()
    g = ClassifierGradCAM(model, 'backbone.layer4',
                          affinity_layers=['backbone.layer3', 'backbone.layer4'])
    cams = g(x, [0, 1])
    feats = g.affinity_features()
    g.release()
    assert cams.shape == (2, 64, 64) and 0 <= cams.min() and cams.max() <= 1
    # layer3 (256 ch, 4 x 4) and layer4 (512 ch, 2 x 2, resized to 4 x 4)
    assert feats.shape == (2, 768, 4, 4)
    with torch.no_grad():
        l3 = model.backbone.layer3(model.backbone.layer2(model.backbone.layer1(
            model.backbone.maxpool(model.backbone.relu(model.backbone.norm1(
                model.backbone.conv1(x)))))))
    torch.testing.assert_close(feats[:, :256], torch.nn.functional.normalize(l3, dim=1),
                               atol=1e-5, rtol=1e-4)


def test_gradcam_localizer_passes_cam_cfg_so_the_baseline_is_the_refined_map():
    from mmengine.registry import DefaultScope
    from mmpretrain.structures import DataSample
    torch.manual_seed(0)
    cfg = dict(type='GradCAMLocalizer', target_layer='backbone.layer4',
               cam_cfg=dict(affinity_layers=['backbone.layer3']),
               backbone=dict(type='ResNet', depth=18, out_indices=(3, )),
               neck=dict(type='GlobalAveragePooling'),
               head=dict(type='LinearClsHead', num_classes=3, in_channels=512))
    with DefaultScope.overwrite_default_scope('tedloc'):
        loc = MODELS.build(cfg).eval()
    x = torch.randn(2, 3, 64, 64)
    samples = [DataSample().set_gt_label(y) for y in (0, 2)]
    maps = np.stack([s.pred_map.numpy() for s in loc.predict(x, samples)])
    plain = ClassifierGradCAM(loc, 'backbone.layer4')
    unrefined = plain(x, [0, 2])
    plain.release()
    refined = ClassifierGradCAM(loc, 'backbone.layer4', affinity_layers=['backbone.layer3'])
    want = refined(x, [0, 2])
    refined.release()
    np.testing.assert_allclose(maps, want, atol=1e-6)
    assert np.abs(maps - unrefined).max() > 0.05
