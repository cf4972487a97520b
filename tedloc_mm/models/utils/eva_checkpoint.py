"""EVA checkpoints: key conversion from the original / timm layouts, and strict loading.

MMPretrain's ``ViTEVA02`` (EVA-02) and ``BEiTViT`` (EVA-01) name their weights
differently from the released checkpoints:

============================  =====================================  =========================
original EVA (BAAI) / timm    MMPretrain                             note
============================  =====================================  =========================
``patch_embed.proj.*``        ``patch_embed.projection.*``
``blocks.i.*``                ``layers.i.*``
q/k/v projections             ``layers.i.attn.qkv.weight``           stacked q, k, v
``q_bias``, ``v_bias``        ``layers.i.attn.qkv.bias``             k bias = 0 (EVA has none)
EVA-02 ``mlp.w1``/``fc1_g``   first half of ``mlp.w12``              SwiGLU gate
EVA-02 ``mlp.w2``/``fc1_x``   second half of ``mlp.w12``
EVA-02 ``mlp.ffn_ln``/``norm`` ``mlp.norm``                          sub-LN
EVA-02 ``mlp.w3``/``fc2``     ``mlp.w3``
EVA-01 ``norm1``/``norm2``    ``ln1``/``ln2``
EVA-01 ``mlp.fc1``/``fc2``    ``ffn.layers.0.0``/``ffn.layers.1``
============================  =====================================  =========================

Classifier heads, the final ``norm``/``fc_norm``, MIM-only weights (``mask_token``,
``lm_head``, ``decoder``) and derived RoPE tables are dropped: the backbone returns
the last block's patch tokens and a trainable decoder follows it. An EVA-CLIP file
(``visual.*`` keys) is reduced to its image tower. An MMPretrain classifier file
(``backbone.*``, ``head.fc.*``; its ``backbone.ln2`` is the classifier's ``fc_norm``)
is reduced to its backbone.

EVA-01-L's classification releases (BAAI's ``eva_l_psz14_196px_21k_to_1k_ft_88p6.pt``
and siblings; timm's ``eva_large_patch14_196.in22k_ft_in22k_in1k`` / ``_336``, a timm
``VisionTransformer`` in the same key layout) were fine-tuned at 196 px (a 14 x 14
grid) or 336 px (24 x 24). :func:`resize_pos_embed` brings ``pos_embed`` to the
training grid (16 x 16 at 224 px) exactly as timm does when it loads those files into
a 224 px model (bicubic with antialiasing). MMPretrain's own load hook would resize
without antialiasing, which changes the tokens (measured on a tiny model: 1.7e-1 off on
tokens of mean magnitude 1.4, against 1e-6 with timm's resize).

MMPretrain's own converters (``.mim/tools/model_converters/eva*_to_mmpretrain.py``)
handle only the original layout and add a ``backbone.`` prefix; this one also reads
timm's layout and writes bare backbone keys, which :func:`load_eva_weights` expects.
"""
import math
import os.path as osp
from collections import OrderedDict
from typing import Dict, Optional, Sequence, Tuple

import torch
from mmengine.runner.checkpoint import CheckpointLoader

VARIANTS = ('eva01', 'eva02')
_DROP_PREFIXES = ('head.', 'lm_head.', 'fc_norm.', 'norm.', 'decoder', 'mask_token', 'rope.',
                  # top-level norms of an MMPretrain classifier's backbone (ln2 = fc_norm,
                  # ln1 = a final norm): the tokens are taken before them
                  'ln1.', 'ln2.')
#: buffers MMPretrain recomputes from the architecture; never required from a file
DERIVED_KEY_SUFFIXES = ('rope.freqs_cos', 'rope.freqs_sin')


def _unwrap(checkpoint) -> Dict[str, torch.Tensor]:
    """The state dict inside a checkpoint file's object, ``module.`` prefix removed."""
    sd = checkpoint
    for key in ('state_dict', 'model', 'module'):
        if isinstance(sd, dict) and key in sd and isinstance(sd[key], dict):
            sd = sd[key]
            break
    if not isinstance(sd, dict):
        raise TypeError(f'expected a state dict, got {type(sd).__name__}')
    out = OrderedDict()
    for k, v in sd.items():
        out[k[len('module.'):] if k.startswith('module.') else k] = v
    if any(k.startswith('visual.') for k in out):  # EVA-CLIP: keep the image tower
        out = OrderedDict((k[len('visual.'):], v) for k, v in out.items()
                          if k.startswith('visual.'))
    return out


def resize_pos_embed(pos_embed: torch.Tensor, grid: Sequence[int],
                     num_prefix_tokens: int = 1) -> torch.Tensor:
    """Position embeddings of a square grid resized to ``grid``, as timm resizes them.

    ``pos_embed`` (1, P + n * n, C), the P prefix rows (class token) kept ->
    (1, P + grid[0] * grid[1], C). The grid part is resized with timm's
    ``resample_abs_pos_embed`` (bicubic, antialias=True; the function timm's
    ``checkpoint_filter_fn`` applies when a 196 px EVA-01-L file loads into a 224 px
    model), so a converted file gives timm's tokens. Unchanged if the grid already fits.
    """
    from timm.layers import resample_abs_pos_embed
    n = pos_embed.shape[1] - num_prefix_tokens
    side = math.isqrt(max(n, 0))
    if pos_embed.dim() != 3 or pos_embed.shape[0] != 1 or side * side != n:
        raise ValueError(f'pos_embed of shape {tuple(pos_embed.shape)} is not (1, '
                         f'{num_prefix_tokens} + n * n, C): cannot tell its grid')
    grid = (int(grid[0]), int(grid[1]))
    if (side, side) == grid:
        return pos_embed
    return resample_abs_pos_embed(pos_embed, new_size=grid, old_size=(side, side),
                                  num_prefix_tokens=num_prefix_tokens,
                                  interpolation='bicubic', antialias=True)


def pos_embed_grid(state_dict: Dict[str, torch.Tensor], num_prefix_tokens: int = 1):
    """(h, w) of the square position-embedding grid of a converted state dict, or None."""
    pe = state_dict.get('pos_embed')
    if pe is None:
        return None
    side = math.isqrt(pe.shape[1] - num_prefix_tokens)
    return side, side


def convert_eva_state_dict(state_dict: Dict[str, torch.Tensor],
                           variant: str,
                           grid: Optional[Sequence[int]] = None
                           ) -> 'OrderedDict[str, torch.Tensor]':
    """Convert an original-EVA, timm or MMPretrain-classifier EVA state dict to
    MMPretrain backbone keys.

    Args:
        state_dict: the weights (a checkpoint object with ``state_dict`` / ``model`` /
            ``module`` inside is unwrapped).
        variant: ``'eva01'`` (``BEiTViT``) or ``'eva02'`` (``ViTEVA02``).
        grid: (h, w) token grid of the model the weights are for (16 x 16 for 14 px
            patches at 224 px): ``pos_embed`` is resized to it with
            :func:`resize_pos_embed`. None keeps the file's grid.
    Returns:
        Bare backbone keys (``cls_token``, ``layers.0.attn.qkv.weight``, ...).
    """
    if variant not in VARIANTS:
        raise ValueError(f'variant must be one of {VARIANTS}, got {variant!r}')
    sd = _unwrap(state_dict)
    if any(k.startswith('backbone.') for k in sd):  # an MMPretrain classifier
        sd = OrderedDict((k[len('backbone.'):], v) for k, v in sd.items()
                         if k.startswith('backbone.'))
    out = OrderedDict()
    per_block: Dict[str, Dict[str, torch.Tensor]] = {}
    for key, value in sd.items():
        if key.startswith(_DROP_PREFIXES):
            continue
        if key.startswith('patch_embed.proj.'):
            out[key.replace('patch_embed.proj.', 'patch_embed.projection.')] = value
        elif key.startswith('blocks.'):
            _, idx, rest = key.split('.', 2)
            per_block.setdefault(idx, {})[rest] = value
        else:  # cls_token, pos_embed, and already-converted names
            out[key] = value
    for idx in sorted(per_block, key=int):
        for rest, value in _convert_block(per_block[idx], variant, idx).items():
            out[f'layers.{idx}.{rest}'] = value
    if grid is not None and 'pos_embed' in out:
        out['pos_embed'] = resize_pos_embed(out['pos_embed'], grid)
    return out


def _convert_block(block: Dict[str, torch.Tensor], variant: str, idx: str) -> Dict:
    b = dict(block)
    out = {}
    # attention: one stacked qkv weight and bias
    if 'attn.qkv.weight' in b:
        out['attn.qkv.weight'] = b.pop('attn.qkv.weight')
    elif 'attn.q_proj.weight' in b:
        out['attn.qkv.weight'] = torch.cat([b.pop(f'attn.{n}_proj.weight') for n in 'qkv'])
    if 'attn.qkv.bias' in b:
        out['attn.qkv.bias'] = b.pop('attn.qkv.bias')
    else:
        biases = [b.pop(f'attn.{n}_bias', None) for n in 'qkv']  # original EVA
        if all(x is None for x in biases):
            biases = [b.pop(f'attn.{n}_proj.bias', None) for n in 'qkv']  # timm
        if any(x is not None for x in biases):
            ref = next(x for x in biases if x is not None)
            out['attn.qkv.bias'] = torch.cat(
                [x if x is not None else torch.zeros_like(ref) for x in biases])
    renames = {'attn.proj.': 'attn.proj.'}
    if variant == 'eva02':
        for part in ('weight', 'bias'):
            gate = b.pop(f'mlp.w1.{part}', b.pop(f'mlp.fc1_g.{part}', None))
            lin = b.pop(f'mlp.w2.{part}', b.pop(f'mlp.fc1_x.{part}', None))
            if gate is not None and lin is not None:
                out[f'mlp.w12.{part}'] = torch.cat([gate, lin])
        renames.update({'mlp.ffn_ln.': 'mlp.norm.', 'mlp.fc2.': 'mlp.w3.',
                        'norm1.': 'norm1.', 'norm2.': 'norm2.'})
    else:
        renames.update({'norm1.': 'ln1.', 'norm2.': 'ln2.', 'mlp.fc1.': 'ffn.layers.0.0.',
                        'mlp.fc2.': 'ffn.layers.1.'})
    for rest, value in b.items():
        if 'rope.' in rest:
            continue
        for src, dst in renames.items():
            if rest.startswith(src):
                rest = dst + rest[len(src):]
                break
        out[rest] = value
    return out


def load_eva_weights(module: torch.nn.Module, filename: str) -> Tuple[int, int]:
    """Load an MMPretrain-layout EVA checkpoint into ``module``; strict, clear errors.

    Accepts a plain state dict or ``{'state_dict': ...}``, with or without a
    ``backbone.`` prefix (as written by MMPretrain's converters). Derived RoPE tables
    may be absent. A square ``pos_embed`` of another grid is resized to the module's
    with :func:`resize_pos_embed` (timm's bicubic with antialiasing, not MMPretrain's
    load hook). Raises FileNotFoundError / KeyError with counts of missing and
    unexpected keys (and a few of each) if the file does not fit the architecture.
    Returns (number of tensors loaded, number of parameters loaded).
    """
    if not osp.isfile(filename):
        raise FileNotFoundError(
            f'EVA backbone checkpoint {filename!r} does not exist. Provide a local file in '
            f"MMPretrain's layout (convert an original EVA / timm file with "
            f'tools/model_converters/eva_to_mmpretrain.py), or set checkpoint=None '
            f'for random weights.')
    # MMEngine's loader (see tedloc_mm.compat): a plain state dict loads with
    # weights_only=True, a Runner checkpoint (a stage-1 classifier's iter_N.pth) too
    obj = CheckpointLoader.load_checkpoint(filename, map_location='cpu')
    sd = _unwrap(obj)
    if any(k.startswith('backbone.') for k in sd):
        sd = OrderedDict((k[len('backbone.'):], v) for k, v in sd.items()
                         if k.startswith('backbone.'))
    own = module.state_dict()
    pe, own_pe = sd.get('pos_embed'), own.get('pos_embed')
    if pe is not None and own_pe is not None and pe.shape != own_pe.shape:
        sd['pos_embed'] = resize_pos_embed(pe, pos_embed_grid(own))
    missing = [k for k in own if k not in sd and not k.endswith(DERIVED_KEY_SUFFIXES)]
    unexpected = [k for k in sd if k not in own]
    if missing or unexpected:
        raise KeyError(
            f'EVA checkpoint {filename!r} does not match the backbone architecture: '
            f'{len(missing)} missing keys (e.g. {missing[:5]}), {len(unexpected)} '
            f'unexpected keys (e.g. {unexpected[:5]}). Check arch/patch_size/variant, and '
            f'convert original EVA / timm files with '
            f'tools/model_converters/eva_to_mmpretrain.py.')
    for k in own:
        if k.endswith(DERIVED_KEY_SUFFIXES) and k not in sd:
            sd[k] = own[k]
    module.load_state_dict(sd, strict=True)
    return len(sd), sum(v.numel() for v in sd.values())


def write_random_timm_eva_file(path: str, timm_name: str = 'eva_large_patch14_196',
                               seed: int = 0, **timm_kwargs) -> Dict[str, torch.Tensor]:
    """A random-weight EVA classifier file as timm publishes it (``model.safetensors`` of
    ``timm_name``, e.g. EVA-01-L ``eva_large_patch14_196``; ``.pth``: a plain state dict),
    for smoke runs and tests: the real keys and shapes, no semantics. ``timm_kwargs`` go
    to ``timm.create_model`` (smaller sizes for tests). Returns the state dict written."""
    import timm
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = timm.create_model(timm_name, pretrained=False, **timm_kwargs)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    if path.endswith('.safetensors'):
        from safetensors.torch import save_file
        save_file(state, path)
    else:
        torch.save(state, path)
    return state
