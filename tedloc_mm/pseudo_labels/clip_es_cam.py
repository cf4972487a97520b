"""CLIP-ES style Grad-CAM from an open_clip image tower (Lin et al., CVPR 2023).

What is computed, for an image x of class y:

* text embeddings: each class name and each background word (``BACKGROUND_WORDS``)
  is put into every prompt template (default ``'a clean origami {}.'``, CLIP-ES's),
  encoded with the open_clip text tower, L2-normalised and averaged over templates
  (then re-normalised);
* logits ``s * <v(x), t>`` with v(x) the normalised image embedding and s the model's
  logit scale;
* the Grad-CAM target is the softmax probability of class y among
  ``[y, background words]`` (the background prompts compete with the class, which is
  what suppresses background in CLIP-ES);
* Grad-CAM (``pytorch_grad_cam.GradCAM``) on the patch tokens entering the last
  block's attention (``visual.transformer.resblocks.-1.ln_1``): the image embedding is
  read from the class token, which the last block's patch-token *outputs* never reach,
  so their gradients are zero; the tokens feeding the last attention are the last
  ones the class token sees.

Not reproduced from CLIP-ES: its class-aware attention-based affinity refinement (CAA)
and its modified last attention layer; multi-scale inputs.

The model comes from a local checkpoint only (``open_clip.create_model(name,
pretrained=<file>)``), or with random weights for tests (``pretrained=None``).
"""
import os.path as osp
from typing import List, Optional, Sequence

import numpy as np
import torch
from pytorch_grad_cam import GradCAM
from torch import nn

from .gradcam_utils import get_module, tokens_to_map

DEFAULT_TEMPLATES = ('a clean origami {}.', )
BACKGROUND_WORDS = ('ground', 'land', 'grass', 'tree', 'building', 'wall', 'sky', 'lake',
                    'water', 'river', 'sea', 'railway', 'railroad', 'keyboard', 'helmet',
                    'cloud', 'house', 'mountain', 'ocean', 'road', 'rock', 'street',
                    'valley', 'bridge', 'sign')


def build_open_clip(model_name: str, checkpoint: Optional[str], device='cpu'):
    """open_clip model from a local checkpoint (never a hub download) or random
    weights (``checkpoint=None``)."""
    import open_clip
    if checkpoint is not None and not osp.isfile(checkpoint):
        raise FileNotFoundError(
            f'open_clip checkpoint not found: {checkpoint} (give a local file; '
            'hub names are not downloaded)')
    model = open_clip.create_model(model_name, pretrained=checkpoint, device=device)
    model.eval()
    return model, open_clip.get_tokenizer(model_name)


class _CLIPLogits(nn.Module):
    """image -> logits over [K classes, background words] (B, K + n_bg)."""

    def __init__(self, clip_model, text_features: torch.Tensor):
        super().__init__()
        self.clip = clip_model
        self.register_buffer('text_features', text_features)

    def forward(self, x):
        v = self.clip.encode_image(x)
        v = v / v.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        return self.clip.logit_scale.exp() * v @ self.text_features.t()


class _SoftmaxAgainstBackground:
    """Grad-CAM target: softmax prob of class y among [y, background prompts]."""

    def __init__(self, label: int, bg_index: torch.Tensor):
        self.index = torch.cat([torch.tensor([label]), bg_index])

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.softmax(logits[..., self.index.to(logits.device)], dim=-1)[..., 0]


class CLIPESGradCAM:
    """Batched CLIP-ES Grad-CAM.

    Args:
        clip_model: an open_clip ``CLIP`` model (eval mode).
        tokenizer: its tokenizer.
        class_names (list[str]): K names; label k uses ``class_names[k]``.
        templates (list[str]): prompt templates with one ``{}``.
        background_words (list[str]): background prompts.
        target_layer (str): dotted module path inside ``clip_model``.

    ``__call__(images, labels)`` takes a normalised float batch (B, 3, S, S) and labels
    (B,), returns float32 CAMs (B, S, S) in [0, 1] (pytorch_grad_cam min-max scales
    each map; a map without positive evidence is all zeros).
    """

    def __init__(self, clip_model, tokenizer, class_names: Sequence[str],
                 templates: Sequence[str] = DEFAULT_TEMPLATES,
                 background_words: Sequence[str] = BACKGROUND_WORDS,
                 target_layer: str = 'visual.transformer.resblocks.-1.ln_1'):
        self.num_classes = len(class_names)
        device = next(clip_model.parameters()).device
        names = list(class_names) + list(background_words)
        text = self.encode_text(clip_model, tokenizer, names, templates, device)
        self.model = _CLIPLogits(clip_model, text).eval()
        self.bg_index = torch.arange(self.num_classes, len(names))
        grid = getattr(clip_model.visual, 'grid_size', None)
        self.cam = GradCAM(self.model, [get_module(clip_model, target_layer)],
                           reshape_transform=tokens_to_map(tuple(grid) if grid else None))

    @staticmethod
    @torch.no_grad()
    def encode_text(clip_model, tokenizer, names: List[str], templates, device):
        feats = 0
        for template in templates:
            tokens = tokenizer([template.format(n) for n in names]).to(device)
            t = clip_model.encode_text(tokens).float()
            feats = feats + t / t.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        return feats / feats.norm(dim=-1, keepdim=True).clamp_min(1e-12)

    def __call__(self, images: torch.Tensor, labels: Sequence[int]) -> np.ndarray:
        targets = [_SoftmaxAgainstBackground(int(y), self.bg_index) for y in labels]
        for y in labels:
            if not 0 <= int(y) < self.num_classes:
                raise ValueError(f'label {y} outside the {self.num_classes} class names')
        return self.cam(input_tensor=images, targets=targets).astype(np.float32)
