"""ClassifierGradCAM cuts the graph at its target layer: same CAMs as plain
pytorch_grad_cam, and no backward pass below the layer."""
import numpy as np
import torch
from pytorch_grad_cam import GradCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

from tedloc_mm.pseudo_labels.classifier_cam import ClassifierGradCAM, _Logits
from tedloc_mm.registry import MODELS


def _classifier():
    torch.manual_seed(0)
    return MODELS.build(dict(
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
