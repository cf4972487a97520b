#!/usr/bin/env python
"""Convert an EVA checkpoint (BAAI's original, timm's, or an MMPretrain classifier)
to the bare backbone layout ``FrozenEVA(checkpoint=...)`` loads.

The output holds bare backbone keys (``cls_token``, ``layers.0.attn.qkv.weight``...);
``pos_embed`` is resized to the grid of ``--img-size`` / ``--patch-size`` (16 x 16 at
224 px) as timm resizes it (bicubic, antialias). The key mapping is documented in
``tedloc_mm/models/utils/eva_checkpoint.py``.

Examples (the paper's encoder: EVA-01-L fine-tuned for ImageNet classification):
  # timm's eva_large_patch14_196.in22k_ft_in22k_in1k (model.safetensors or a .pth of it)
  python tools/model_converters/eva_to_mmpretrain.py --variant eva01 \
      eva_large_patch14_196.pth checkpoints/eva-l-p14-196-in21k-in1k_mmpretrain.pth
  # BAAI's original file of the same weights
  python tools/model_converters/eva_to_mmpretrain.py --variant eva01 \
      eva_l_psz14_196px_21k_to_1k_ft_88p6.pt checkpoints/eva-l-p14-196-in21k-in1k_mmpretrain.pth
  # EVA-02-L fine-tuned for classification (the variant config)
  python tools/model_converters/eva_to_mmpretrain.py --variant eva02 \
      eva02_L_pt_m38m_medft_in21k_ft_in1k_p14.pt checkpoints/eva02-l-p14-in1k_mmpretrain.pth
"""
import argparse
import os
import os.path as osp

import tedloc_mm  # noqa: F401
from tedloc_mm.tool_errors import UserError, add_debug_argument, run_tool  # noqa: E402

# torch and the converter are imported in main(), after the arguments are parsed


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('src', help='EVA checkpoint (local file: .pt / .pth / .safetensors)')
    p.add_argument('dst', help='output file')
    p.add_argument('--variant', required=True,
                   help='eva02 (ViTEVA02) or eva01 (BEiTViT)')
    p.add_argument('--img-size', type=int, default=224,
                   help='input size the weights are converted for (the paper: 224)')
    p.add_argument('--patch-size', type=int, default=14, help='patch size (EVA-L: 14)')
    p.add_argument('--trust-checkpoint', action='store_true',
                   help='read SRC with full unpickling (weights_only=False): only for a '
                   'file you trust (e.g. a file with training arguments pickled in it), '
                   'as unpickling can run code')
    add_debug_argument(p)
    args = p.parse_args(argv)
    if not osp.isfile(args.src):
        raise FileNotFoundError(f'{args.src!r} does not exist')
    import torch

    from tedloc_mm.fileio.checkpoint import load_local_checkpoint, trusted_checkpoints
    from tedloc_mm.models.utils.eva_checkpoint import (VARIANTS, convert_eva_state_dict,
                                                       pos_embed_grid)
    if args.variant not in VARIANTS:
        raise UserError(f'--variant {args.variant!r}: expected one of {", ".join(VARIANTS)}')
    if args.src.endswith('.safetensors'):  # timm's hub format: tensors only, no code
        from safetensors.torch import load_file
        obj = load_file(args.src)
    else:
        # weights_only=True (refused: anything beyond weights; errors name the file)
        with trusted_checkpoints([args.src] if args.trust_checkpoint else []):
            obj = load_local_checkpoint(args.src, map_location='cpu')
    if isinstance(obj, dict) and 'model_ema' in obj and 'model' in obj:
        print("note: the file holds 'model' and 'model_ema'; converting 'model'")
    grid = (args.img_size // args.patch_size, ) * 2
    src_grid = pos_embed_grid(convert_eva_state_dict(obj, args.variant))
    out = convert_eva_state_dict(obj, args.variant, grid=grid)
    if src_grid is not None and src_grid != grid:
        print(f'pos_embed resized from {src_grid[0]}x{src_grid[1]} to {grid[0]}x{grid[1]} '
              f'(bicubic, antialias: as timm loads it at {args.img_size} px)')
    if osp.dirname(osp.abspath(args.dst)):
        os.makedirs(osp.dirname(osp.abspath(args.dst)), exist_ok=True)
    torch.save(dict(state_dict=out), args.dst)
    print(f'wrote {args.dst}: {len(out)} tensors, '
          f'{sum(v.numel() for v in out.values()) / 1e6:.1f} M values')


if __name__ == '__main__':
    raise SystemExit(run_tool(main))
