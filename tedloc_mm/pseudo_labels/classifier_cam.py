"""Grad-CAM of any MMPretrain classifier, with ``pytorch_grad_cam`` (the library
MMPretrain's own ``tools/visualization/vis_cam.py`` uses).

The target is the logit of the image's ground-truth class
(``ClassifierOutputTarget``). The default target layer is the first norm of the last
transformer block (``backbone.layers.-1.ln1`` or ``.norm1``) for ViT-like backbones
(the class token is read after the last block, so the last block's patch-token
outputs get no gradient); CNNs need ``target_layer`` (e.g. ``backbone.layer4``).
Several target layers: pytorch_grad_cam's own aggregation (each layer's map min-max
normalised and resized to the input, ReLU, mean over layers, normalised again).

Optional refinement by the classifier's own feature affinity (``affinity_layers``,
off by default), CLIP-ES's CAA (:mod:`tedloc_mm.clip.es_affinity`) with the frozen feature
maps' cosine affinity in place of a ViT's attention: the features of the given
layers (each resized to the finest one's grid and L2-normalised per position, then
concatenated) give A_ij = exp(cos(f_i, f_j) / tau) on that grid (N = h*w); the
Grad-CAM, area-resized to the grid, is refined with CAA's Sinkhorn-normalised,
symmetrised, squared transition matrix and class-aware box mask, min-max normalised
and resized (bilinear) back to the input. Our choice, not the paper's: the paper
takes CLIP-ES maps, whose CAA needs attention; a CNN classifier has none, and
feature affinity is the analogue that PSA / AffinityNet-style refinements use.
"""
import os.path as osp
from typing import List, Optional, Sequence, Union

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from pytorch_grad_cam import GradCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from torch import nn

from tedloc_mm.clip.es_affinity import caa_refine, scale_cam
from .gradcam_utils import get_module, tokens_to_map


def build_classifier(config, checkpoint: Optional[str], device='cpu',
                     trust_checkpoint: bool = False,
                     num_classes: Optional[int] = None) -> nn.Module:
    """MMPretrain model from a config (path or Config) and a local checkpoint
    (``None``: random weights, for tests). The file is read with
    ``weights_only=True`` (plus the Runner's globals) unless ``trust_checkpoint``
    (full unpickling: only for a file you trust).

    ``num_classes``: the head's (and data preprocessor's) class count, set in the
    config before building (e.g. the data set's, when the config was written for
    another one). A checkpoint tensor whose shape differs from the built model's is an
    error naming both shapes: MMPretrain's loader would only warn and keep the random
    initial weights (a classifier without its trained head gives random CAMs)."""
    import copy

    from mmengine.config import Config
    from mmpretrain.apis import init_model

    from tedloc_mm.fileio.checkpoint import load_local_checkpoint, trusted_checkpoints
    if checkpoint is not None and not osp.isfile(checkpoint):
        raise FileNotFoundError(f'classifier checkpoint not found: {checkpoint}')
    if num_classes is not None:
        config = copy.deepcopy(config if isinstance(config, Config) else
                               Config.fromfile(config))
        config.model.head.num_classes = int(num_classes)
        if 'num_classes' in config.model.get('data_preprocessor', {}):
            config.model.data_preprocessor.num_classes = int(num_classes)
    with trusted_checkpoints([checkpoint] if trust_checkpoint else []):
        model = init_model(config, checkpoint, device=device)
        if checkpoint is not None:
            state = load_local_checkpoint(checkpoint, map_location='cpu')
            state = state.get('state_dict', state)
            own = model.state_dict()
            bad = [f'{k}: {tuple(v.shape)} in the file, {tuple(own[k].shape)} in the model'
                   for k, v in state.items()
                   if k in own and hasattr(v, 'shape') and tuple(v.shape) != tuple(own[k].shape)]
            if bad:
                raise ValueError(f'{checkpoint} does not fit the classifier its config builds '
                                 f'({"; ".join(bad)}): set the classes (num_classes, e.g. '
                                 "the data set's class_names.txt) to the checkpoint's")
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

    Args:
        model: the classifier.
        target_layer: dotted module path, or a list of them (maps averaged).
        affinity_layers: None (no refinement) or dotted paths of CNN feature maps
            (B, C, h, w) whose cosine affinity refines the map (module docstring).
        affinity_temperature: tau of A_ij = exp(cos / tau).
        affinity_box_threshold: CAA's box-mask threshold on the normalised map.
        affinity_power: squarings of the transition matrix (CLIP-ES: 1).
    """

    def __init__(self, model: nn.Module,
                 target_layer: Union[None, str, Sequence[str]] = None,
                 affinity_layers: Optional[Sequence[str]] = None,
                 affinity_temperature: float = 0.1,
                 affinity_box_threshold: float = 0.4,
                 affinity_power: int = 1):
        self.model = _Logits(model).eval()
        if target_layer is None:
            target_layer = default_target_layer(model)
        names = [target_layer] if isinstance(target_layer, str) else list(target_layer)
        patch = getattr(model.backbone, 'patch_embed', None)
        grid = getattr(patch, 'init_out_size', None)
        layers = [get_module(model, n) for n in names]
        # Grad-CAM needs d logit / d activation only: cut the graph at the target layer
        # (registered before GradCAM's own hooks, which then see the cut tensor), so the
        # backward pass skips everything below it (measured: CAMs of EfficientNet-Lite0
        # about 2x faster; gradients identical). With several target layers the cut
        # goes at the one that runs first (a cut above it would stop its gradient).
        cut = layers[0] if len(layers) == 1 else self._first_to_run(model, layers)
        self._cut = cut.register_forward_hook(
            lambda module, args, out: out.detach().requires_grad_(True)
            if isinstance(out, torch.Tensor) else out)
        self.cam = GradCAM(self.model, layers,
                           reshape_transform=tokens_to_map(tuple(grid) if grid else None))
        self.affinity_layers = list(affinity_layers or [])
        if affinity_temperature <= 0:
            raise ValueError(f'affinity_temperature must be > 0, got {affinity_temperature}')
        self.affinity_temperature = float(affinity_temperature)
        self.affinity_box_threshold = float(affinity_box_threshold)
        self.affinity_power = int(affinity_power)
        self._feats: List[Optional[torch.Tensor]] = [None] * len(self.affinity_layers)
        self._feat_hooks = [
            get_module(model, n).register_forward_hook(self._keeper(i))
            for i, n in enumerate(self.affinity_layers)]

    def _keeper(self, i):
        def hook(module, args, out):
            out = out[0] if isinstance(out, (tuple, list)) else out
            if out.dim() != 4:
                raise ValueError(f'affinity layer {self.affinity_layers[i]!r} gives '
                                 f'{tuple(out.shape)}, not a (B, C, h, w) map')
            self._feats[i] = out.detach()
        return hook

    @staticmethod
    def _first_to_run(model: nn.Module, layers: Sequence[nn.Module]) -> nn.Module:
        """The layer of ``layers`` whose forward runs first (one probing forward)."""
        order = []
        hooks = [m.register_forward_hook(lambda mod, a, o: order.append(mod)) for m in layers]
        try:
            size = 224
            with torch.no_grad():
                model(torch.zeros(1, 3, size, size,
                                  device=next(model.parameters()).device), mode='tensor')
        finally:
            for h in hooks:
                h.remove()
        return next(m for m in order if any(m is layer for layer in layers))

    def release(self) -> None:
        """Remove the hooks this object put on the model."""
        self._cut.remove()
        for h in self._feat_hooks:
            h.remove()
        self.cam.activations_and_grads.release()

    def affinity_features(self) -> torch.Tensor:
        """The kept affinity-layer maps, resized to the finest grid, L2-normalised per
        position and layer, concatenated: (B, sum C, h, w)."""
        feats = [f.float() for f in self._feats]
        size = max((f.shape[-2:] for f in feats), key=lambda s: s[0] * s[1])
        feats = [f if f.shape[-2:] == size else
                 F.interpolate(f, size=size, mode='bilinear', align_corners=False)
                 for f in feats]
        return torch.cat([F.normalize(f, dim=1) for f in feats], dim=1)

    def refine(self, cams: np.ndarray, feats: torch.Tensor) -> np.ndarray:
        """(B, S, S) maps in [0, 1] + (B, C, h, w) features -> refined (B, S, S)."""
        B, C, h, w = feats.shape
        S = cams.shape[-1]
        grid = np.stack([cv2.resize(c, (w, h), interpolation=cv2.INTER_AREA) for c in cams])
        f = F.normalize(feats.reshape(B, C, h * w).double(), dim=1)
        # the concatenation of L layers has norm sqrt(L): cos in [-1, 1] after normalising
        cos = f.transpose(1, 2) @ f
        attn = torch.exp((cos - 1) / self.affinity_temperature)  # max 1: no overflow
        refined = scale_cam(caa_refine(scale_cam(grid), attn, self.affinity_box_threshold,
                                       power=self.affinity_power))
        return np.stack([cv2.resize(c, (S, S), interpolation=cv2.INTER_LINEAR)
                         for c in refined]).astype(np.float32)

    def __call__(self, images: torch.Tensor, labels: Sequence[int]) -> np.ndarray:
        targets = [ClassifierOutputTarget(int(y)) for y in labels]
        cams = self.cam(input_tensor=images, targets=targets).astype(np.float32)
        if self.affinity_layers:
            cams = self.refine(cams, self.affinity_features())
        return cams
