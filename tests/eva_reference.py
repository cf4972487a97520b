"""Tiny EVA encoders and timm's own EVA as the reference of the converter tests."""
import torch

import tedloc_mm  # noqa: F401  (before timm)
from tedloc_mm.models.backbones import FrozenEVA

TINY = dict(arch=dict(embed_dims=64, num_layers=2, num_heads=4, feedforward_channels=128),
            patch_size=8, img_size=64)


def tiny_eva(variant='eva02', num_heads=4, **kw):
    torch.manual_seed(0)
    cfg = dict(TINY, arch=dict(TINY['arch'], num_heads=num_heads))
    return FrozenEVA(variant=variant, **cfg, **kw)


def randomize(module):
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.1)


def _timm_eva(variant, rope=True, num_heads=4, qk_gain=1.0):
    import timm
    kw = dict(img_size=64, patch_size=8, embed_dim=64, depth=2, num_heads=num_heads,
              mlp_ratio=2, num_classes=0)
    if variant == 'eva02':
        kw.update(qkv_fused=False, swiglu_mlp=True, scale_mlp=True, use_rot_pos_emb=rope,
                  ref_feat_shape=(8, 8))
    else:
        kw.update(qkv_fused=True, use_rot_pos_emb=False)
    model = timm.models.eva.Eva(**kw).eval()
    model.norm = torch.nn.Identity()  # compare the last block's raw tokens
    randomize(model)
    with torch.no_grad():  # sharper attention (see the RoPE test)
        for name, p in model.named_parameters():
            if name.endswith(('q_proj.weight', 'k_proj.weight')):
                p.mul_(qk_gain)
    return model
