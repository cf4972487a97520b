#!/usr/bin/env python
"""Convert an original EVA (BAAI) or timm EVA checkpoint to MMPretrain's layout.

The output holds bare backbone keys (``cls_token``, ``layers.0.attn.qkv.weight``...),
the form ``FrozenEVA(checkpoint=...)`` loads. The key mapping is documented in
``tedloc_mm/models/utils/eva_checkpoint.py``.

Examples:
  python tools/model_converters/eva_to_mmpretrain.py --variant eva02 \
      eva02_L_pt_m38m_p14.pt checkpoints/eva02-l-p14_mmpretrain.pth
  python tools/model_converters/eva_to_mmpretrain.py --variant eva01 \
      eva_l_psz14.pt checkpoints/eva-l-p14_mmpretrain.pth
"""
import argparse
import os
import os.path as osp

import torch

import tedloc_mm  # noqa: F401
from tedloc_mm.fileio.checkpoint import load_local_checkpoint
from tedloc_mm.models.utils.eva_checkpoint import VARIANTS, convert_eva_state_dict
from tedloc_mm.fileio.checkpoint import trusted_checkpoints


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('src', help='original EVA / timm checkpoint (local file)')
    p.add_argument('dst', help='output file')
    p.add_argument('--variant', choices=VARIANTS, required=True,
                   help='eva02 (ViTEVA02) or eva01 (BEiTViT)')
    p.add_argument('--trust-checkpoint', action='store_true',
                   help='read SRC with full unpickling (weights_only=False): only for a '
                   'file you trust (e.g. a file with training arguments pickled in it), '
                   'as unpickling can run code')
    args = p.parse_args(argv)
    if not osp.isfile(args.src):
        raise FileNotFoundError(f'{args.src!r} does not exist')
    # weights_only=True (refused: anything beyond weights; errors name the file)
    with trusted_checkpoints([args.src] if args.trust_checkpoint else []):
        obj = load_local_checkpoint(args.src, map_location='cpu')
    out = convert_eva_state_dict(obj, args.variant)
    if osp.dirname(osp.abspath(args.dst)):
        os.makedirs(osp.dirname(osp.abspath(args.dst)), exist_ok=True)
    torch.save(dict(state_dict=out), args.dst)
    print(f'wrote {args.dst}: {len(out)} tensors, '
          f'{sum(v.numel() for v in out.values()) / 1e6:.1f} M values')


if __name__ == '__main__':
    main()
