"""CLIP-ES Grad-CAM from an open_clip / OpenAI CLIP ViT (Lin et al., CVPR 2023).

The TeD-Loc paper takes its pseudo-labels from "Grad-CAM [1] from CLIP [22]" (App. A,
[1] = CLIP-ES). What is computed for a normalised image x and a class y (defaults =
the public CLIP-ES code and the TeD-Loc authors' use of it, ``TrCAM/dlib/clip``):

* text: each class name and each background word (``BACKGROUND_WORDS``) in every prompt
  template (default ``'a clean origami {}.'``), L2-normalised, averaged over templates,
  re-normalised (``t_k``);
* image embedding v: ``image_pool='patch_mean'`` (CLIP-ES): the mean over the patch
  tokens of ln_post(x_L) @ proj; ``'cls'``: CLIP's class-token embedding;
* logits s * <v / |v|, t_k> (s = the model's logit scale);
* Grad-CAM target (``softmax_over``): ``'label'`` (default): the softmax probability of y
  among [y, background words] -- CLIP-ES's softmax over "the categories in an image and
  the background set" for a single-label image, and the authors' [y, bg] target;
  ``'all'``: the softmax probability of y among all K classes and the background words
  (for when the image's classes are unknown);
* Grad-CAM on the last block's attention input ln_1(x_L-1): weights = gradients averaged
  over the patches, map = ReLU(sum_c weight_c * activation_c) on the patch grid, min-max
  normalised;
* ``refine=True`` (default): CLIP-ES's CAA (:mod:`.clip_es_affinity`) with the mean
  attention of the last ``attn_layers`` = 8 layers and the 0.4 box threshold, min-max
  normalised again;
* the grid map is resized bilinearly to the input and, over ``scales`` (default (1,);
  input side ceil(scale * S / patch) * patch, bicubic) and optional horizontal flips,
  averaged and min-max normalised.

Grad-CAM is written out here, not taken from ``pytorch_grad_cam``: CAA needs the map on
the patch grid and the attention maps of the same forward pass, and pytorch_grad_cam
always resizes its map to the input before returning it.
"""
from typing import Dict, List, Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from tedloc_mm.clip.checkpoint import load_clip
from .es_affinity import caa_refine, scale_cam
from .vit_forward import CLIPViTForward, input_side

DEFAULT_TEMPLATES = ('a clean origami {}.', )
#: CLIP-ES's background words (its VOC list; the TeD-Loc authors' code uses the same)
BACKGROUND_WORDS = ('ground', 'land', 'grass', 'tree', 'building', 'wall', 'sky', 'lake',
                    'water', 'river', 'sea', 'railway', 'railroad', 'keyboard', 'helmet',
                    'cloud', 'house', 'mountain', 'ocean', 'road', 'rock', 'street',
                    'valley', 'bridge', 'sign')
SOFTMAX_OVER = ('label', 'all')
IMAGE_POOLS = ('patch_mean', 'cls')


def build_open_clip(model_name, checkpoint, device='cpu', seed=None, **arch_overrides):
    """CLIP from a local file (OpenAI TorchScript archive or open_clip checkpoint, see
    :func:`tedloc_mm.clip.checkpoint.load_clip`), or random weights when
    ``checkpoint`` is None (tests, cost measurements; warns). ``seed`` None draws the
    random weights from the global RNG."""
    if checkpoint is None and seed is None:
        import open_clip
        if model_name not in open_clip.list_models():
            raise ValueError(f'unknown open_clip model {model_name!r}')
        model = open_clip.create_model(model_name, pretrained=None, **arch_overrides)
        model = model.to(device).eval()
        return model, open_clip.get_tokenizer(model_name, context_length=model.context_length)
    return load_clip(model_name, checkpoint, device=device, random_init=checkpoint is None,
                     seed=seed or 0, **arch_overrides)


@torch.no_grad()
def encode_prompts(clip_model, tokenizer, names: Sequence[str], templates: Sequence[str],
                   device=None, batch_size: int = 256) -> torch.Tensor:
    """(len(names), D) float32: per name the mean of the L2-normalised embeddings of its
    prompts, L2-normalised again (CLIP-ES's ``zeroshot_classifier``)."""
    device = device or next(clip_model.parameters()).device
    prompts = [t.format(n) for n in names for t in templates]
    feats = []
    for i in range(0, len(prompts), batch_size):
        tok = tokenizer(prompts[i:i + batch_size]).to(device)
        feats.append(F.normalize(clip_model.encode_text(tok).float(), dim=-1))
    feats = torch.cat(feats).view(len(names), len(templates), -1)
    return F.normalize(feats.mean(dim=1), dim=-1)


class CLIPESGradCAM:
    """Batched CLIP-ES Grad-CAM (see the module docstring for every step).

    Args:
        clip_model: an open_clip ``CLIP`` with a ViT image tower (eval mode).
        tokenizer: its tokenizer.
        class_names (list[str]): K names; label k uses ``class_names[k]``.
        templates, background_words: prompts (CLIP-ES's by default).
        softmax_over: ``'label'`` or ``'all'``.
        image_pool: ``'patch_mean'`` or ``'cls'``.
        refine: apply CAA.
        attn_layers: how many last layers' attention CAA averages (CLIP-ES: 8).
        box_threshold: CAA's box-mask threshold (CLIP-ES: 0.4).
        scales: input scales; flip: add horizontally flipped inputs.

    ``__call__(images, labels)`` takes a normalised float batch (B, 3, S, S) and labels
    (B,), returns float32 CAMs (B, S, S) in [0, 1]; a map without positive evidence
    is all zeros.
    """

    def __init__(self, clip_model, tokenizer, class_names: Sequence[str],
                 templates: Sequence[str] = DEFAULT_TEMPLATES,
                 background_words: Sequence[str] = BACKGROUND_WORDS,
                 softmax_over: str = 'label', image_pool: str = 'patch_mean',
                 refine: bool = True, attn_layers: int = 8, box_threshold: float = 0.4,
                 scales: Sequence[float] = (1.0, ), flip: bool = False):
        if softmax_over not in SOFTMAX_OVER:
            raise ValueError(f'softmax_over must be one of {SOFTMAX_OVER}, got {softmax_over!r}')
        if image_pool not in IMAGE_POOLS:
            raise ValueError(f'image_pool must be one of {IMAGE_POOLS}, got {image_pool!r}')
        if not scales or any(s <= 0 for s in scales):
            raise ValueError(f'scales must be positive, got {scales!r}')
        self.clip = clip_model
        self.vit = CLIPViTForward(clip_model.visual)
        self.num_classes = len(class_names)
        self.softmax_over, self.image_pool = softmax_over, image_pool
        self.refine, self.box_threshold = refine, float(box_threshold)
        n_layers = len(clip_model.visual.transformer.resblocks)
        self.attn_layers = min(int(attn_layers), n_layers)
        self.scales, self.flip = tuple(float(s) for s in scales), bool(flip)
        names = list(class_names) + list(background_words)
        self.text_features = encode_prompts(clip_model, tokenizer, names, templates)
        self.bg_index = torch.arange(self.num_classes, len(names))

    def logits(self, tokens: torch.Tensor) -> torch.Tensor:
        """x_L (B, L, C) -> s * cos(v, t) over [K classes, background words] (B, K + M)."""
        z = self.vit.project(tokens)
        v = z[:, 1:].mean(dim=1) if self.image_pool == 'patch_mean' else z[:, 0]
        v = F.normalize(v, dim=-1)
        return self.clip.logit_scale.exp() * v @ self.text_features.to(v).t()

    def target(self, logits: torch.Tensor, labels: Sequence[int]) -> torch.Tensor:
        """The Grad-CAM target of each image (B,): softmax probability of its label."""
        if self.softmax_over == 'all':
            return torch.softmax(logits, dim=-1)[torch.arange(len(labels)), list(labels)]
        bg = self.bg_index.to(logits.device)
        idx = torch.stack([torch.cat([torch.tensor([y], device=logits.device), bg])
                           for y in labels])
        return torch.softmax(logits.gather(1, idx), dim=-1)[:, 0]

    def grid_cams(self, images: torch.Tensor, labels: Sequence[int]) -> Dict[str, np.ndarray]:
        """One view: dict(``gradcam`` (B, h, w) in [0, 1], ``refined`` (B, h, w) in
        [0, 1] or None, ``attn`` (B, N, N) patch attention or None)."""
        with torch.enable_grad():
            out = self.vit(images, attn_layers=self.attn_layers if self.refine else 0,
                           grad_last_block_only=True)
            act = out['last_ln1']
            target = self.target(self.logits(out['tokens']), labels)
            grad, = torch.autograd.grad(target.sum(), act)
        h, w = out['grid']
        a, g = act.detach()[:, 1:].double(), grad[:, 1:].double()   # drop the class token
        weights = g.mean(dim=1, keepdim=True)                        # (B, 1, C)
        cam = torch.relu((a * weights).sum(-1)).reshape(-1, h, w).cpu().numpy()
        cam = scale_cam(cam)
        result = dict(gradcam=cam, refined=None, attn=None)
        if self.refine:
            attn = torch.stack(out['attn']).mean(0)[:, 1:, 1:].detach().cpu()
            result['attn'] = attn
            result['refined'] = scale_cam(caa_refine(cam, attn, self.box_threshold))
        return result

    def __call__(self, images: torch.Tensor, labels: Sequence[int]) -> np.ndarray:
        labels = [int(y) for y in labels]
        for y in labels:
            if not 0 <= y < self.num_classes:
                raise ValueError(f'label {y} outside the {self.num_classes} class names')
        S_h, S_w = images.shape[-2:]
        ph, pw = self.vit.patch_size
        views: List[np.ndarray] = []
        for scale in self.scales:
            size = (input_side(S_h, scale, ph), input_side(S_w, scale, pw))
            x = images if size == (S_h, S_w) else F.interpolate(
                images, size=size, mode='bicubic', align_corners=False)
            for flipped in ((False, True) if self.flip else (False, )):
                cams = self.grid_cams(x.flip(-1) if flipped else x, labels)
                grid = cams['refined'] if self.refine else cams['gradcam']
                full = np.stack([cv2.resize(c, (int(S_w), int(S_h)), interpolation=cv2.INTER_LINEAR)
                                 for c in grid])
                views.append(full[:, :, ::-1] if flipped else full)
        if len(views) == 1:
            return np.ascontiguousarray(views[0], dtype=np.float32)
        return scale_cam(np.mean(views, axis=0))
