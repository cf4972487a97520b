#!/usr/bin/env python
"""Shrink a saved TeD-Loc checkpoint: leave out the frozen backbone, as
``LeanCheckpointHook`` does when it saves (see ``tedloc_mm/engine/lean_checkpoint.py``).

The backbone's weights are checked against the config's ``model.backbone.checkpoint``
file before they are dropped, so that loading can restore exactly them from it.

Example:
  python tools/model_converters/lean_checkpoint.py configs/tedloc_eva-l_cub.py \
      work_dirs/tedloc_eva-l_cub/best_wsol_MaxBoxAccV2_epoch_42.pth \
      work_dirs/tedloc_eva-l_cub/best_lean.pth
"""
import argparse
import os
import os.path as osp

import tedloc_mm  # noqa: F401
from tedloc_mm.model_index import resolve_config
from tedloc_mm.tool_errors import (CfgOptionsAction, UserError, add_debug_argument,  # noqa: E402
                                   run_tool)

# torch, MMEngine and the model are imported in main(), after the arguments are parsed


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('config', help='the config the checkpoint was trained with')
    p.add_argument('src', help='a full checkpoint')
    p.add_argument('dst', help='output file')
    p.add_argument('--prefix', default='backbone.', help='the frozen submodule to leave out')
    p.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction,
                   help='override config settings, e.g. model.backbone.checkpoint=...')
    p.add_argument('--trust-checkpoint', action='store_true',
                   help='read SRC with full unpickling (weights_only=False): only for a '
                   'file you trust, as unpickling can run code')
    add_debug_argument(p)
    args = p.parse_args(argv)
    args.config = resolve_config(args.config)
    if not osp.isfile(args.src):
        raise FileNotFoundError(f'{args.src!r} does not exist')
    import torch
    from mmengine.config import Config
    from mmengine.registry import DefaultScope
    from mmengine.runner.checkpoint import CheckpointLoader

    from tedloc_mm.engine import restore_frozen_weights, strip_frozen_weights
    from tedloc_mm.fileio.checkpoint import trusted_checkpoints
    from tedloc_mm.registry import MODELS
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    with trusted_checkpoints([args.src] if args.trust_checkpoint else []):
        checkpoint = CheckpointLoader.load_checkpoint(args.src, map_location='cpu')
    if (checkpoint.get('meta') or {}).get('lean_checkpoint'):
        raise UserError(f'{args.src} is already a lean checkpoint')
    head = cfg.model.get('head', {})
    if head.get('anchor_file') and 'head.anchors' in checkpoint['state_dict']:
        head.anchor_file = None            # the anchors come with the checkpoint
        head.anchor_embeddings = checkpoint['state_dict']['head.anchors'].float().clone()
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'tedloc')):
        model = MODELS.build(cfg.model)
    # the tensors about to be dropped (references: no copy, no second read of src)
    original = {k: v for k, v in checkpoint['state_dict'].items() if k.startswith(args.prefix)}
    num = strip_frozen_weights(model, checkpoint, args.prefix)
    # they must be the backbone file's: restore them from it and compare
    check = dict(meta=dict(lean_checkpoint=checkpoint['meta']['lean_checkpoint']),
                 state_dict={})
    mismatch = f'the backbone in {args.src} differs from {cfg.model.backbone.checkpoint}'
    try:
        restore_frozen_weights(model, check)
    except ValueError as e:
        raise UserError(f'{mismatch} ({e})') from None
    for key, value in original.items():
        if not torch.equal(check['state_dict'][key], value):
            raise UserError(f'{mismatch} ({key})')
    if osp.dirname(osp.abspath(args.dst)):
        os.makedirs(osp.dirname(osp.abspath(args.dst)), exist_ok=True)
    torch.save(checkpoint, args.dst)
    print(f'wrote {args.dst}: {num} backbone tensors left out, '
          f'{osp.getsize(args.src) / 2**20:.1f} MiB -> {osp.getsize(args.dst) / 2**20:.1f} MiB')


if __name__ == '__main__':
    raise SystemExit(run_tool(main))
