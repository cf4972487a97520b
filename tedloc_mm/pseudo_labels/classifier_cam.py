"""Grad-CAM of any MMPretrain classifier, with ``pytorch_grad_cam`` (the library
MMPretrain's own ``tools/visualization/vis_cam.py`` uses).

The target is the logit of the image's ground-truth class
(``ClassifierOutputTarget``). The default target layer is the first norm of the last
transformer block (``backbone.layers.-1.ln1`` or ``.norm1``) for ViT-like backbones
(the class token is read after the last block, so the last block's patch-token
outputs get no gradient); CNNs need ``target_layer`` (e.g. ``backbone.layer4``).
"""
import os.path as osp
from typing import Optional, Sequence

import numpy as np
import torch
from pytorch_grad_cam import GradCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from torch import nn

from .gradcam_utils import get_module, tokens_to_map


def build_classifier(config, checkpoint: Optional[str], device='cpu',
                     trust_checkpoint: bool = False) -> nn.Module:
    """MMPretrain model from a config (path or Config) and a local checkpoint
    (``None``: random weights, for tests). The file is read with
    ``weights_only=True`` (plus the Runner's globals) unless ``trust_checkpoint``
    (full unpickling: only for a file you trust)."""
    from mmpretrain.apis import init_model

    from tedloc_mm.fileio.checkpoint import trusted_checkpoints
    if checkpoint is not None and not osp.isfile(checkpoint):
        raise FileNotFoundError(f'classifier checkpoint not found: {checkpoint}')
    with trusted_checkpoints([checkpoint] if trust_checkpoint else []):
        model = init_model(config, checkpoint, device=device)
    model.eval()
    return model


def default_target_layer(model: nn.Module) -> str:
    layers = getattr(model.backbone, 'layers', None)
    if layers is not None and len(layers):
        for norm in ('ln1', 'norm1'):
            if hasattr(layers[-1], norm):
                return f'backbone.layers.-1.{norm}'
    raise ValueError(f'no default Grad-CAM target layer for {type(model.backbone).__name__};'
                     ' give one, e.g. --target-layer backbone.layer4')


class _Logits(nn.Module):

    def __init__(self, classifier):
        super().__init__()
        self.classifier = classifier

    def forward(self, x):
        out = self.classifier(x, mode='tensor')
        return out[-1] if isinstance(out, (tuple, list)) else out


class ClassifierGradCAM:
    """Batched Grad-CAM of an MMPretrain ``ImageClassifier``.

    ``__call__(images, labels)``: ``images`` float (B, 3, S, S) already normalised by
    the model's ``data_preprocessor``; returns float32 (B, S, S) in [0, 1].
    """

    def __init__(self, model: nn.Module, target_layer: Optional[str] = None):
        self.model = _Logits(model).eval()
        target_layer = target_layer or default_target_layer(model)
        patch = getattr(model.backbone, 'patch_embed', None)
        grid = getattr(patch, 'init_out_size', None)
        layer = get_module(model, target_layer)
        # Grad-CAM needs d logit / d activation only: cut the graph at the target layer
        # (registered before GradCAM's own hooks, which then see the cut tensor), so the
        # backward pass skips everything below it (measured: CAMs of EfficientNet-Lite0
        # about 2x faster; gradients identical)
        self._cut = layer.register_forward_hook(
            lambda module, args, out: out.detach().requires_grad_(True)
            if isinstance(out, torch.Tensor) else out)
        self.cam = GradCAM(self.model, [layer],
                           reshape_transform=tokens_to_map(tuple(grid) if grid else None))

    def release(self) -> None:
        """Remove the hooks this object put on the model."""
        self._cut.remove()
        self.cam.activations_and_grads.release()

    def __call__(self, images: torch.Tensor, labels: Sequence[int]) -> np.ndarray:
        targets = [ClassifierOutputTarget(int(y)) for y in labels]
        return self.cam(input_tensor=images, targets=targets).astype(np.float32)
