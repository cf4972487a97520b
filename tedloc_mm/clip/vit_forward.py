"""The image tower of an open_clip ViT run block by block: patch tokens at any input size,
the self-attention maps of the last layers, and the last-layer attention of SCLIP / NACLIP.

open_clip's ``VisionTransformer.forward`` returns neither attention weights (it calls
``nn.MultiheadAttention`` with ``need_weights=False``) nor lets the last block be changed,
and it adds its positional embedding at the trained grid size only. CLIP-ES (attention
affinity of the last 8 layers, any input size), SCLIP and NACLIP (a different last
attention) need all three, so the blocks are evaluated here with the tower's own weights:

    x_0   = ln_pre([cls; conv1(image)] + pos)        pos bicubic-resized to the grid (h, w)
    x_l+1 = x_l + ls_1(MHA_l(ln_1(x_l))) ; x_l+1 += ls_2(mlp(ln_2(x_l+1)))
    z     = ln_post(x_L) @ proj                      (B, 1 + h*w, D): class token, patches

``MHA`` with ``q, k, v = in_proj(y)`` split into heads of width d, scale s = d^-1/2:

* ``'vanilla'``: softmax(s q k^T) v (CLIP itself);
* ``'sclip'``: (softmax(s q q^T) + softmax(s k k^T)) v, residual and MLP kept (SCLIP's
  correlative self-attention, Wang et al. 2023, as its public code runs it);
* ``'naclip'``: softmax(s k k^T + Omega) v with Omega_pq = exp(-|p - q|^2 / (2 sigma^2))
  between patch positions p, q (grid units; 0 for the class token), and the block
  *reduced* to that attention alone, x_L = ls_1(MHA(ln_1(x_L-1))): no residual, no MLP
  (NACLIP, Hajimiri et al., WACV 2025, its default ``arch='reduced'``, sigma = 5).

The variants change only the last block; earlier blocks are CLIP's.
"""
import math
from typing import Dict, List, Tuple

import torch
import torch.nn.functional as F
from torch import nn

LAST_ATTENTIONS = ('vanilla', 'sclip', 'naclip')


def check_supported(visual: nn.Module) -> None:
    """Raise a clear error for open_clip towers this module does not evaluate."""
    from open_clip.transformer import ResidualAttentionBlock, VisionTransformer
    name = type(visual).__name__
    if not isinstance(visual, VisionTransformer):
        raise NotImplementedError(f'CLIP image tower {name} is not an open_clip ViT '
                                  '(ResNet / timm towers are not supported)')
    if visual.attn_pool is not None or getattr(visual, 'pool_type', 'tok') != 'tok' \
            or getattr(visual, 'final_ln_after_pool', False):
        raise NotImplementedError(f'{name}: only class-token pooling is supported '
                                  f'(pool_type={getattr(visual, "pool_type", None)!r})')
    for i, blk in enumerate(visual.transformer.resblocks):
        if type(blk) is not ResidualAttentionBlock or hasattr(blk, 'ln_1_kv'):
            raise NotImplementedError(f'{name}: block {i} is a {type(blk).__name__}; only '
                                      "open_clip's default ResidualAttentionBlock is supported")


def resize_pos_embed(pos: torch.Tensor, grid: Tuple[int, int], new_grid: Tuple[int, int]):
    """(1 + g*g, C) positional embedding -> (1 + h*w, C), patch part resized bicubically
    (align_corners=False), class-token row kept; unchanged when the grid is the same."""
    if tuple(grid) == tuple(new_grid):
        return pos
    cls, patch = pos[:1], pos[1:]
    patch = patch.reshape(1, grid[0], grid[1], -1).permute(0, 3, 1, 2)
    patch = F.interpolate(patch, size=tuple(new_grid), mode='bicubic', align_corners=False)
    return torch.cat([cls, patch.permute(0, 2, 3, 1).reshape(-1, pos.shape[1])])


def naclip_gaussian(grid: Tuple[int, int], std: float, device=None, dtype=None) -> torch.Tensor:
    """NACLIP's Omega (1 + h*w, 1 + h*w): exp(-|p - q|^2 / (2 std^2)) between patch
    positions (row-major, grid units), zero in the class token's row and column."""
    h, w = grid
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float64),
                            torch.arange(w, dtype=torch.float64), indexing='ij')
    pos = torch.stack([ys.flatten(), xs.flatten()], dim=1)
    omega = torch.exp(-torch.cdist(pos, pos).pow(2) / (2 * std * std))
    omega = F.pad(omega, (1, 0, 1, 0))
    return omega.to(device=device, dtype=dtype or torch.float32)


class CLIPViTForward:
    """Block-by-block evaluation of ``visual`` (an open_clip ``VisionTransformer``).

    Args:
        visual: the tower (weights are used, never changed).
        naclip_std: sigma of NACLIP's Gaussian, in patches (NACLIP's default 5).
    """

    def __init__(self, visual: nn.Module, naclip_std: float = 5.0):
        check_supported(visual)
        self.visual = visual
        self.naclip_std = float(naclip_std)
        self.patch_size = tuple(visual.conv1.kernel_size)
        self.grid = tuple(visual.grid_size)

    def embed(self, images: torch.Tensor) -> Tuple[torch.Tensor, Tuple[int, int]]:
        """(B, 3, H, W) -> x_0 (B, 1 + h*w, C) and the grid (h, w); H, W multiples of
        the patch size."""
        v = self.visual
        H, W = images.shape[-2:]
        ph, pw = self.patch_size
        if H % ph or W % pw:
            raise ValueError(f'input {H}x{W} is not a multiple of the patch size {ph}x{pw}')
        x = v.conv1(images.to(v.conv1.weight.dtype))
        grid = tuple(x.shape[-2:])
        x = x.flatten(2).transpose(1, 2)
        cls = v.class_embedding.to(x.dtype).view(1, 1, -1).expand(x.shape[0], -1, -1)
        x = torch.cat([cls, x], dim=1)
        x = x + resize_pos_embed(v.positional_embedding, self.grid, grid).to(x.dtype)
        return v.ln_pre(x), grid

    def attention(self, blk: nn.Module, y: torch.Tensor, mode: str, grid) -> Tuple[torch.Tensor,
                                                                                  torch.Tensor]:
        """Multi-head attention of block ``blk`` on y = ln_1(x) (B, L, C): the output
        (B, L, C) before ``ls_1`` and the head-averaged weights (B, L, L)."""
        attn = blk.attn
        B, L, C = y.shape
        nh = attn.num_heads
        q, k, v = F.linear(y, attn.in_proj_weight, attn.in_proj_bias).chunk(3, dim=-1)
        q, k, v = (t.reshape(B, L, nh, C // nh).transpose(1, 2) for t in (q, k, v))
        scale = (C // nh)**-0.5
        if mode == 'vanilla':
            weights = torch.softmax(q @ k.transpose(-2, -1) * scale, dim=-1)
        elif mode == 'sclip':
            weights = (torch.softmax(q @ q.transpose(-2, -1) * scale, dim=-1)
                       + torch.softmax(k @ k.transpose(-2, -1) * scale, dim=-1))
        elif mode == 'naclip':
            omega = naclip_gaussian(grid, self.naclip_std, y.device, y.dtype)
            weights = torch.softmax(k @ k.transpose(-2, -1) * scale + omega, dim=-1)
        else:
            raise ValueError(f'last attention must be one of {LAST_ATTENTIONS}, got {mode!r}')
        out = (weights @ v).transpose(1, 2).reshape(B, L, C)
        return attn.out_proj(out), weights.mean(dim=1)

    def forward(self, images: torch.Tensor, last_attention: str = 'vanilla',
                attn_layers: int = 0, grad_last_block_only: bool = False) -> Dict:
        """Run the tower.

        Args:
            images: normalised (B, 3, H, W).
            last_attention: one of ``LAST_ATTENTIONS`` (see the module docstring).
            attn_layers: also return the head-averaged attention weights of the last
                ``attn_layers`` blocks (0: none).
            grad_last_block_only: evaluate all blocks but the last without autograd
                (Grad-CAM on the last block needs no more; CLIP-ES does the same).

        Returns:
            dict(``tokens``: x_L (B, 1 + h*w, C); ``last_ln1``: ln_1(x_L-1), the last
            block's attention input (B, 1 + h*w, C); ``attn``: list of (B, L, L), oldest
            first; ``grid``: (h, w)).
        """
        if last_attention not in LAST_ATTENTIONS:
            raise ValueError(f'last attention must be one of {LAST_ATTENTIONS}, '
                             f'got {last_attention!r}')
        blocks = self.visual.transformer.resblocks
        n = len(blocks)
        attn_maps: List[torch.Tensor] = []
        with torch.set_grad_enabled(torch.is_grad_enabled() and not grad_last_block_only):
            x, grid = self.embed(images)
            for i, blk in enumerate(blocks[:-1]):
                out, w = self.attention(blk, blk.ln_1(x), 'vanilla', grid)
                if i >= n - attn_layers:
                    attn_maps.append(w)
                x = x + blk.ls_1(out)
                x = x + blk.ls_2(blk.mlp(blk.ln_2(x)))
        if torch.is_grad_enabled() and not x.requires_grad:
            x = x.detach().requires_grad_()   # so that gradients reach ln_1(x_L-1)
        blk = blocks[-1]
        y = blk.ln_1(x)
        out, w = self.attention(blk, y, last_attention, grid)
        if attn_layers > 0:
            attn_maps.append(w)
        if last_attention == 'naclip':
            x = blk.ls_1(out)
        else:
            x = x + blk.ls_1(out)
            x = x + blk.ls_2(blk.mlp(blk.ln_2(x)))
        return dict(tokens=x, last_ln1=y, attn=attn_maps, grid=grid)

    __call__ = forward

    def project(self, tokens: torch.Tensor) -> torch.Tensor:
        """x_L (B, L, C) -> ln_post(x_L) @ proj (B, L, D), not normalised. Token 0 is
        CLIP's image embedding (class-token pooling)."""
        v = self.visual
        z = v.ln_post(tokens)
        return z @ v.proj if v.proj is not None else z


def input_side(side: int, scale: float, patch: int) -> int:
    """CLIP-ES's input side at ``scale``: ceil(scale * side / patch) * patch."""
    return int(math.ceil(scale * side / patch) * patch)
