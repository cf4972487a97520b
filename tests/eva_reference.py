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


def timm_eva01_classifier(img_size, patch_size=8, qk_gain=10.0):
    """A random-weight timm ``VisionTransformer`` of EVA-01-L's released classification
    kind (timm's ``eva_large_patch14_196`` constructor: average pooling, fc_norm, full
    qkv bias, class token in pos_embed), shrunk to width 64 and 2 blocks.

    The q/k weights are scaled so that attention depends on position (with the
    0.1-scale weights it is nearly uniform) and pos_embed is smooth and large, so a
    resize that differs from timm's shows in the tokens.
    """
    import timm
    model = timm.create_model('eva_large_patch14_196', pretrained=False, img_size=img_size,
                              patch_size=patch_size, embed_dim=64, depth=2, num_heads=4,
                              mlp_ratio=2, num_classes=10).eval()
    randomize(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith('qkv.weight'):
                p[:128].mul_(qk_gain)  # q and k rows
        n = model.pos_embed.shape[1] - 1
        side = int(round(n ** 0.5))
        yy, xx = torch.meshgrid(torch.linspace(0, 3, side), torch.linspace(0, 3, side),
                                indexing='ij')
        freqs = torch.arange(1, 65, dtype=torch.float32)[:, None, None] / 16
        smooth = torch.sin(freqs * xx + 0.5 * freqs * yy + freqs)  # (64, side, side)
        model.pos_embed[0, 1:] = smooth.flatten(1).T
    return model
