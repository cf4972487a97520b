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
(``visual.*`` keys) is reduced to its image tower.

MMPretrain's own converters (``.mim/tools/model_converters/eva*_to_mmpretrain.py``)
handle only the original layout and add a ``backbone.`` prefix; this one also reads
timm's layout and writes bare backbone keys, which :func:`load_eva_weights` expects.
"""
import os.path as osp
from collections import OrderedDict
from typing import Dict, Tuple

import torch
from mmengine.runner.checkpoint import CheckpointLoader

VARIANTS = ('eva01', 'eva02')
_DROP_PREFIXES = ('head.', 'lm_head.', 'fc_norm.', 'norm.', 'decoder', 'mask_token', 'rope.')
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


def convert_eva_state_dict(state_dict: Dict[str, torch.Tensor],
                           variant: str) -> 'OrderedDict[str, torch.Tensor]':
    """Convert an original-EVA or timm EVA state dict to MMPretrain backbone keys.

    Args:
        state_dict: the weights (a checkpoint object with ``state_dict`` / ``model`` /
            ``module`` inside is unwrapped).
        variant: ``'eva01'`` (``BEiTViT``) or ``'eva02'`` (``ViTEVA02``).
    Returns:
        Bare backbone keys (``cls_token``, ``layers.0.attn.qkv.weight``, ...).
    """
    if variant not in VARIANTS:
        raise ValueError(f'variant must be one of {VARIANTS}, got {variant!r}')
    sd = _unwrap(state_dict)
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
    may be absent. ``pos_embed`` of another grid size is resized by MMPretrain's
    load hook. Raises FileNotFoundError / KeyError with counts of missing and
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
