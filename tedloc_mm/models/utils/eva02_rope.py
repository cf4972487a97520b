"""The 2-D rotary position embedding (RoPE) of the original EVA-02, for MMPretrain's ViTEVA02.

Why not MMPretrain's own: ``RotaryEmbeddingFast`` (MMPretrain 1.2.0) rotates adjacent
channel pairs (2i, 2i+1) but builds its angle table with ``.repeat(1, 2)``,
``[f0 .. f(n-1), f0 .. f(n-1)]``, so the two channels of a pair get different angles and
the map is no rotation. It also places token t at ``t / grid * half_dim`` instead of the
EVA-02 / timm ``t / grid * pretrain_grid``. The original EVA-02 (``rope.py``,
``repeat(freqs, '... n -> ... (n r)', r=2)``) and timm's ``Eva`` interleave,
``[f0, f0, f1, f1, ...]``. Measured on a tiny EVA-02 with timm's weights and sharpened
attention (q/k weights x10), MMPretrain's table gives tokens off by 7e-2 from timm's
forward, this one by 5e-7 (``tests/test_models/test_eva_checkpoint.py``).
"""
import torch
from mmpretrain.models.utils import RotaryEmbeddingFast
from mmpretrain.models.utils.helpers import to_2tuple


class EVA02RotaryEmbedding(RotaryEmbeddingFast):
    """RoPE with EVA-02's angle table; a drop-in for MMPretrain's ``RotaryEmbeddingFast``.

    Args:
        embed_dims (int): channels per attention head.
        patch_resolution (int | tuple): the token grid (H, W) of the input.
        ref_resolution (int | tuple): the token grid of pretraining (EVA-02: 224 px /
            patch 14 = 16), EVA-02's ``pt_seq_len`` and timm's ``ref_feat_shape``: token
            t of an H-grid sits at ``t * ref / H``.
        theta (float): frequency base.

    The tables ``freqs_cos`` / ``freqs_sin`` (H*W, embed_dims) are derived: a checkpoint's
    copy is ignored when loading (older checkpoints hold MMPretrain's table).
    """

    def __init__(self, embed_dims, patch_resolution, ref_resolution, theta=10000.):
        self.ref_resolution = to_2tuple(ref_resolution)
        super().__init__(embed_dims, patch_resolution, theta=theta)

    def compute_position_embedding(self):
        freq = 1. / self.theta**(torch.arange(0, self.half_dim, 2).float() / self.half_dim)
        (h, w), (ref_h, ref_w) = self.patch_resolution, self.ref_resolution
        angle_h = (torch.arange(h) / h * ref_h)[:, None] * freq  # (h, half_dim / 2)
        angle_w = (torch.arange(w) / w * ref_w)[:, None] * freq
        # both channels of a rotated pair (2i, 2i+1) get the same angle
        angle_h = angle_h.repeat_interleave(2, dim=1)[:, None].expand(h, w, self.half_dim)
        angle_w = angle_w.repeat_interleave(2, dim=1)[None].expand(h, w, self.half_dim)
        angle = torch.cat((angle_h, angle_w), dim=-1).reshape(h * w, -1)
        return angle.cos(), angle.sin()

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        for name in ('freqs_cos', 'freqs_sin'):
            if prefix + name in state_dict:  # derived: keep our own table
                state_dict[prefix + name] = getattr(self, name)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


def use_eva02_rope(vit, ref_resolution) -> EVA02RotaryEmbedding:
    """Replace the RoPE module of an MMPretrain ``ViTEVA02`` (shared by its layers)."""
    old = vit.rope
    new = EVA02RotaryEmbedding(old.half_dim * 2, old.patch_resolution, ref_resolution,
                               theta=old.theta).to(old.freqs_cos.device)
    vit.rope = new
    for module in vit.modules():
        if getattr(module, 'rope', None) is old:
            module.rope = new
    return new
