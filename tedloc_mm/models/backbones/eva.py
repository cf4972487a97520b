"""Frozen EVA image encoder E of TeD-Loc (paper §3: ViT-EVA-L, frozen)."""
import copy
from typing import Optional, Union

from mmpretrain.models.backbones import BEiTViT, ViTEVA02

from tedloc_mm.registry import MODELS
from ..utils.eva_checkpoint import load_eva_weights
from .frozen_backbone import FrozenBackbone

#: MMPretrain's settings of the released EVA models (its ``eva*-p14_headless`` configs)
_VARIANT_DEFAULTS = {
    # LayerNorm eps 1e-6 as in the original EVA-02 code (MMPretrain's default is 1e-5;
    # measured: with 1e-5 a converted timm EVA-02 gives tokens off by ~2e-2)
    'eva02': dict(sub_ln=True, final_norm=False, norm_cfg=dict(type='LN', eps=1e-6)),
    'eva01': dict(layer_scale_init_value=0.0, use_abs_pos_emb=True, use_rel_pos_bias=False,
                  use_shared_rel_pos_bias=False, layer_cfgs=dict(bias=True),
                  final_norm=False),
}


@MODELS.register_module()
class FrozenEVA(FrozenBackbone):
    """An EVA ViT from MMPretrain returning its last patch tokens as a map.

    The EVA case of :class:`FrozenBackbone` (same freezing, lazy loading and
    ``out_stride`` / ``out_channels``), kept for the EVA-L configs: it fills in
    MMPretrain's EVA settings, keeps the ViT under ``.vit`` (state-dict keys
    ``backbone.vit.*``, as in existing checkpoints) and reads EVA files with
    :func:`~tedloc_mm.models.utils.load_eva_weights` (derived RoPE tables may be
    absent; original / timm files are converted by
    ``tools/model_converters/eva_to_mmpretrain.py``).

    ``variant='eva02'`` builds MMPretrain's ``ViTEVA02`` (EVA-02), ``'eva01'`` its
    ``BEiTViT`` with EVA-01's settings. ``arch`` is MMPretrain's: ``'l'`` for the
    paper's EVA-L (1024 wide, 24 layers), or a dict such as
    ``dict(embed_dims=64, num_layers=2, num_heads=4, feedforward_channels=128)``
    for tests and demos.

    With ``frozen=True`` (TeD-Loc's setting) every parameter has
    ``requires_grad=False``, the forward pass runs under ``torch.no_grad()`` (no
    activations are kept for backward: about 1 GB saved per 224 px EVA-L image), and
    the module stays in eval mode whatever ``train()`` is called with, so dropout /
    drop-path never act.

    Args:
        variant: ``'eva02'`` or ``'eva01'``.
        arch: MMPretrain arch name or dict.
        img_size: input size the position embeddings are built for (224).
        patch_size: 14 for the released EVA models (= ``out_stride``).
        checkpoint: local file in MMPretrain's layout, or None for random weights.
            Read in :meth:`init_weights`, which the Runner calls before training
            only: testing or resuming a TeD-Loc checkpoint (which holds the backbone
            too) does not need this file.
        frozen: see above.
        **kwargs: more arguments of the MMPretrain backbone.

    Forward:
        (B, 3, H, W) normalised images -> (B, C, H // patch_size, W // patch_size)
        patch tokens of the last block (class token dropped, no final norm).
    """

    encoder_name = 'vit'

    def __init__(self,
                 variant: str = 'eva02',
                 arch: Union[str, dict] = 'l',
                 img_size: int = 224,
                 patch_size: int = 14,
                 checkpoint: Optional[str] = None,
                 frozen: bool = True,
                 init_cfg=None,
                 **kwargs):
        if variant not in _VARIANT_DEFAULTS:
            raise ValueError(f'variant must be one of {tuple(_VARIANT_DEFAULTS)}, '
                             f'got {variant!r}')
        cfg = copy.deepcopy(_VARIANT_DEFAULTS[variant])
        cfg.update(kwargs)
        cfg.update(arch=arch, img_size=img_size, patch_size=patch_size, out_type='featmap')
        vit_cls = ViTEVA02 if variant == 'eva02' else BEiTViT
        vit = vit_cls(**cfg)
        super().__init__(vit, checkpoint=checkpoint, frozen=frozen, init_cfg=init_cfg,
                         out_stride=patch_size, out_channels=vit.embed_dims)
        self.variant = variant
        self.patch_size = patch_size
        self.embed_dims = vit.embed_dims

    def load_checkpoint_file(self, filename: str):
        """EVA files: :func:`load_eva_weights` (strict, RoPE tables may be absent)."""
        return load_eva_weights(self.vit, filename)
