"""CLIP used zero-shot as a WSOL localizer: paper Table 1's CLIP-ES rows and Table 4's
(patch, class) dot-product rows, evaluated by ``tools/test.py`` + ``WSOLMetric``.

Both models keep a frozen CLIP (:func:`tedloc_mm.clip.load_clip`: an OpenAI
``ViT-B-16.pt`` archive or an open_clip file; random weights only for synthetic tests)
and give, per image, ``pred_score`` = CLIP's zero-shot class probabilities
softmax(s * <v / |v|, t_k>) over the K class prompts (v: the image embedding, t_k:
normalised prompt-ensembled text embeddings, s: CLIP's logit scale), ``pred_label``
and a ``pred_map`` at the input size. Nothing is trained: ``mode='loss'`` raises.
Run with ``python tools/test.py CONFIG none``.
"""
import os.path as osp
from typing import List, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from mmengine.model import BaseModel
from mmpretrain.structures import DataSample

from tedloc_mm.registry import MODELS, build
from tedloc_mm.clip import (BUILTIN_CLASS_LISTS, builtin_class_names, clip_image_mean_std,
                            load_clip, resolve_templates)
from tedloc_mm.fileio.class_names import read_class_names


def resolve_class_names(class_names: Union[str, Sequence[str]]) -> List[str]:
    """A list of names, a built-in list name (``BUILTIN_CLASS_LISTS``) or a class-name
    file (one per line, see :func:`tedloc_mm.fileio.class_names.read_class_names`)."""
    if isinstance(class_names, str):
        if class_names in BUILTIN_CLASS_LISTS:
            return builtin_class_names(class_names)
        if osp.isfile(class_names):
            return read_class_names(class_names, clean=True)
        raise FileNotFoundError(f'class_names={class_names!r} is neither a built-in list '
                                f'{list(BUILTIN_CLASS_LISTS)} nor an existing file')
    return [str(n) for n in class_names]


class _ZeroShotCLIP(BaseModel):
    """Shared part: the frozen CLIP, the class-prompt embeddings, the scores.

    Args:
        clip (dict): :func:`tedloc_mm.clip.load_clip` arguments: ``model_name``,
            ``checkpoint`` (local file), ``random_init`` / ``seed`` (tests), and
            architecture overrides (``embed_dim``, ``vision_cfg``, ``text_cfg``).
        class_names: K names, a built-in list or a file (:func:`resolve_class_names`).
        templates: prompt templates of the classifier (a named set or a list).
        data_preprocessor: default MMPretrain ``ClsDataPreprocessor`` with the CLIP
            model's mean / std and BGR -> RGB.
    """

    def __init__(self, clip: dict, class_names, templates='openai_imagenet',
                 data_preprocessor: Optional[dict] = None, init_cfg=None):
        clip = dict(clip)
        model, tokenizer = load_clip(clip.pop('model_name'), clip.pop('checkpoint', None),
                                     **clip)
        if data_preprocessor is None:
            mean, std = clip_image_mean_std(model)
            data_preprocessor = dict(mean=[m * 255 for m in mean], std=[s * 255 for s in std],
                                     to_rgb=True)
        if isinstance(data_preprocessor, dict):
            data_preprocessor = dict(data_preprocessor)
            data_preprocessor.setdefault('type', 'ClsDataPreprocessor')
            data_preprocessor = build(MODELS, data_preprocessor)
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        # parameters keep requires_grad (nothing trains them: no optimizer, Grad-CAM takes
        # input gradients only) so that MMEngine's DDP wrapper accepts the model under
        # tools/dist_test.sh
        self.clip = model
        self.tokenizer = tokenizer
        self.class_names = resolve_class_names(class_names)
        from tedloc_mm.clip.es_cam import encode_prompts
        from tedloc_mm.clip.vit_forward import CLIPViTForward
        self.vit = CLIPViTForward(model.visual)
        self.register_buffer('class_text', encode_prompts(model, tokenizer, self.class_names,
                                                          resolve_templates(templates)))

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def init_weights(self):
        pass  # the CLIP weights come from its checkpoint, nothing to initialise

    def train(self, mode: bool = True):
        return super().train(False)   # frozen, always eval

    def class_scores(self, image_emb: torch.Tensor) -> torch.Tensor:
        """(B, D) image embeddings -> (B, K) zero-shot class probabilities."""
        v = F.normalize(image_emb.float(), dim=-1)
        return torch.softmax(self.clip.logit_scale.exp() * v @ self.class_text.t(), dim=-1)

    def _labels(self, data_samples, pred_label: torch.Tensor, which: str) -> List[int]:
        if which == 'pred':
            return [int(y) for y in pred_label]
        missing = [i for i, s in enumerate(data_samples) if 'gt_label' not in s]
        if missing:
            raise KeyError(f"the GT-known map needs gt_label; sample(s) {missing} have none "
                           "(use the predicted class for unlabelled images)")
        labels = [int(s.gt_label[0]) for s in data_samples]
        bad = [y for y in labels if not 0 <= y < self.num_classes]
        if bad:
            raise ValueError(f'label(s) {bad[:5]} outside the {self.num_classes} class names')
        return labels

    def forward(self, inputs: torch.Tensor, data_samples: Optional[List[DataSample]] = None,
                mode: str = 'tensor'):
        if mode == 'loss':
            raise RuntimeError(f'{type(self).__name__} is zero-shot CLIP: nothing to train '
                               '(evaluate it with tools/test.py CONFIG none)')
        if mode == 'tensor':
            return self.class_scores(self.vit.project(self.vit(inputs)['tokens'])[:, 0])
        if mode == 'predict':
            if data_samples is None:
                data_samples = [DataSample(metainfo=dict(img_shape=tuple(inputs.shape[-2:])))
                                for _ in range(inputs.shape[0])]
            return self.predict(inputs, data_samples)
        raise RuntimeError(f'Invalid mode "{mode}": use "predict" or "tensor".')

    @staticmethod
    def _store(data_samples, scores, maps):
        for sample, score, cam in zip(data_samples, scores, maps):
            sample.set_pred_score(score.detach().cpu())
            sample.set_field(torch.as_tensor(cam, dtype=torch.float32).cpu(), 'pred_map',
                             dtype=torch.Tensor)
        return data_samples


@MODELS.register_module()
class CLIPESLocalizer(_ZeroShotCLIP):
    """CLIP-ES as a zero-shot localizer (paper Table 1, first rows).

    ``pred_score``: CLIP's zero-shot classification (class-token embedding, prompts
    ``templates``). ``pred_map``: the CLIP-ES Grad-CAM
    (:class:`tedloc_mm.clip.es_cam.CLIPESGradCAM`, options in ``cam``) of

    * ``cam_class='gt'``: the ground-truth class -- "CLIP-ES (GT-Known)";
    * ``cam_class='pred'``: CLIP's own top-1 class -- "CLIP-ES (Pred)".

    Args:
        cam_class: ``'gt'`` or ``'pred'``.
        cam (dict): ``CLIPESGradCAM`` keyword arguments (templates, background_words,
            softmax_over, image_pool, refine, attn_layers, box_threshold, scales, flip).
        **kwargs: see :class:`_ZeroShotCLIP`.
    """

    def __init__(self, cam_class: str = 'gt', cam: Optional[dict] = None, **kwargs):
        if cam_class not in ('gt', 'pred'):
            raise ValueError(f"cam_class must be 'gt' or 'pred', got {cam_class!r}")
        super().__init__(**kwargs)
        from tedloc_mm.clip.es_cam import CLIPESGradCAM
        cam = dict(cam or {})
        if 'templates' in cam:
            cam['templates'] = resolve_templates(cam['templates'])
        self.cam_class = cam_class
        self.gradcam = CLIPESGradCAM(self.clip, self.tokenizer, self.class_names, **cam)

    def predict(self, inputs: torch.Tensor, data_samples: List[DataSample]):
        with torch.no_grad():
            scores = self.class_scores(self.vit.project(self.vit(inputs)['tokens'])[:, 0])
        labels = self._labels(data_samples, scores.argmax(dim=1), self.cam_class)
        maps = self.gradcam(inputs, labels)
        return self._store(data_samples, scores, maps)


@MODELS.register_module()
class CLIPPatchTextLocalizer(_ZeroShotCLIP):
    """The (patch, class) dot-product map <z_p, t_y> of CLIP's own patch tokens (paper
    Table 4 and Fig. 5: vanilla CLIP, SCLIP, NACLIP).

    z_p = ln_post(x_L)_p @ proj and t_y are L2-normalised (so the map is their cosine),
    the (h, w) map is resized bilinearly (align_corners=False) to the input.

    Args:
        last_attention: ``'vanilla'`` (CLIP), ``'sclip'`` or ``'naclip'`` (see
            :mod:`tedloc_mm.clip.vit_forward`).
        naclip_std: NACLIP's Gaussian sigma in patches (5).
        map_class: ``'gt'`` (the paper: "y is the true image class") or ``'pred'``.
        score_source: ``'same'``: the class-token embedding of the same (modified)
            forward pass; ``'clip'``: of unmodified CLIP.
        **kwargs: see :class:`_ZeroShotCLIP`.
    """

    def __init__(self, last_attention: str = 'vanilla', naclip_std: float = 5.0,
                 map_class: str = 'gt', score_source: str = 'same', **kwargs):
        from tedloc_mm.clip.vit_forward import LAST_ATTENTIONS
        if last_attention not in LAST_ATTENTIONS:
            raise ValueError(f'last_attention must be one of {LAST_ATTENTIONS}, '
                             f'got {last_attention!r}')
        if map_class not in ('gt', 'pred'):
            raise ValueError(f"map_class must be 'gt' or 'pred', got {map_class!r}")
        if score_source not in ('same', 'clip'):
            raise ValueError(f"score_source must be 'same' or 'clip', got {score_source!r}")
        super().__init__(**kwargs)
        self.vit.naclip_std = float(naclip_std)
        self.last_attention, self.map_class, self.score_source = (last_attention, map_class,
                                                                  score_source)

    @torch.no_grad()
    def predict(self, inputs: torch.Tensor, data_samples: List[DataSample]):
        out = self.vit(inputs, last_attention=self.last_attention)
        z = self.vit.project(out['tokens'])
        if self.score_source == 'same' or self.last_attention == 'vanilla':
            scores = self.class_scores(z[:, 0])
        else:
            scores = self.class_scores(self.vit.project(self.vit(inputs)['tokens'])[:, 0])
        labels = self._labels(data_samples, scores.argmax(dim=1), self.map_class)
        patches = F.normalize(z[:, 1:].float(), dim=-1)                       # (B, N, D)
        t = self.class_text[torch.tensor(labels, device=patches.device)]      # (B, D)
        h, w = out['grid']
        maps = (patches @ t.unsqueeze(-1)).reshape(-1, 1, h, w)
        maps = F.interpolate(maps, size=tuple(inputs.shape[-2:]), mode='bilinear',
                             align_corners=False)[:, 0]
        return self._store(data_samples, scores, maps)
