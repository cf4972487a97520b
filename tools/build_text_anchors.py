#!/usr/bin/env python
"""Build a TeD-Loc anchor file: class names -> prompts -> open_clip text embeddings.

Examples:
  python tools/build_text_anchors.py --classes cub --model ViT-L-14 \
      --checkpoint /models/open_clip_vit_l14.bin --templates cub --out anchors/cub_vit-l-14.pth
  python tools/build_text_anchors.py --class-file data/ilsvrc/class_names.txt \
      --model ViT-H-14 --checkpoint /models/open_clip_vit_h14.bin --out anchors/ilsvrc_vit-h-14.pth
  # OpenAI's own archive (the file CLIP-ES uses); the architecture comes from the file
  python tools/build_text_anchors.py --classes imagenet_openai --model ViT-B-16 \
      --checkpoint /models/ViT-B-16.pt --templates openai_imagenet --out anchors/ilsvrc_vit-b-16.pth
  # offline demo only: random text tower, loud warning, anchors without semantics
  python tools/build_text_anchors.py --classes cub --model ViT-B-32 --random-init --out /tmp/a.pth

The embeddings are not orthogonalised here: PatchMILHead does it
(orthogonalization='qr' | 'svd' | 'none').
"""
import argparse
import os
import sys

os.environ.setdefault('HF_HUB_OFFLINE', '1')  # never reach a hub from this tool

import tedloc_mm  # noqa: E402,F401  (compat workarounds before open_clip is imported)
from tedloc_mm.tool_errors import add_debug_argument, run_tool  # noqa: E402
from tedloc_mm.clip.prompts import BUILTIN_CLASS_LISTS  # noqa: E402
from tedloc_mm.fileio.class_names import ClassNamesError  # noqa: E402

# the text model (torch, open_clip) is imported in main(), after the arguments are parsed


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument('--class-file', help='text file, one class name per line, index order')
    src.add_argument('--classes', choices=list(BUILTIN_CLASS_LISTS),
                     help="a built-in class list: MMPretrain's cub / imagenet names, or "
                     "imagenet_openai (OpenAI's readable ImageNet names)")
    p.add_argument('--model', default='ViT-L-14', help='open_clip architecture name')
    p.add_argument('--checkpoint', help='local CLIP file: an open_clip checkpoint (read with '
                   'weights_only=True) or an OpenAI TorchScript archive (e.g. ViT-B-16.pt; '
                   'a TorchScript archive is code by design, torch.jit.load runs it: use '
                   'only archives from a source you trust)')
    p.add_argument('--random-init', action='store_true',
                   help='random text tower (offline demo only; anchors are meaningless)')
    p.add_argument('--seed', type=int, default=0,
                   help='seed of the --random-init weights (same seed, same anchors)')
    p.add_argument('--templates', nargs='+', default=['ensemble'],
                   help="a named set (single, ensemble, cub, clip_es, openai_imagenet) or "
                   "templates containing '{}'")
    p.add_argument('--out', required=True, help='anchor file to write (.pth)')
    add_debug_argument(p)
    return p.parse_args(argv)


def refuse_identical_prompts(tokenizer, names, templates, source):
    """Raise ClassNamesError if two classes' prompts tokenize identically (e.g. names that
    differ only in characters the tokenizer's cleaning drops), naming both lines."""
    tokens = tokenizer([templates[0].format(n) for n in names])
    seen = {}
    for k, row in enumerate(tokens.tolist()):
        j = seen.setdefault(tuple(row), k)
        if j != k:
            raise ClassNamesError(
                f'{source}:{k + 1}: the prompt of class name {names[k]!r} tokenizes like that '
                f'of line {j + 1} ({names[j]!r}): the two classes would get identical '
                'anchors; give each class a name of its own')


def main(argv=None):
    args = parse_args(argv)
    from tedloc_mm.clip import (builtin_class_names, encode_class_names, load_text_model,
                                resolve_templates)
    from tedloc_mm.fileio import check_unique_names, read_class_names, save_anchor_file
    from tedloc_mm.fileio.anchor_file import RANDOM_INIT
    names = (read_class_names(args.class_file, clean=True) if args.class_file
             else builtin_class_names(args.classes))
    source = args.class_file or f'built-in class list {args.classes!r} (line = class index + 1)'
    # two classes with one name (ignoring case, as CLIP's tokenizer lowercases) would get
    # identical anchors, which QR refuses and 'svd' / 'none' would silently merge
    check_unique_names(names, source, casefold=True)
    spec = args.templates[0] if len(args.templates) == 1 else args.templates
    templates = resolve_templates(spec)
    model, tokenizer = load_text_model(args.model, args.checkpoint, args.random_init, args.seed)
    refuse_identical_prompts(tokenizer, names, templates, source)
    emb = encode_class_names(model, tokenizer, names, templates)
    save_anchor_file(args.out, emb, names, args.model,
                     args.checkpoint if args.checkpoint else RANDOM_INIT, templates)
    print(f'wrote {args.out}: K={emb.shape[0]} classes, d={emb.shape[1]}, model '
          f'{args.model}, {len(templates)} templates'
          + (' [RANDOM-INIT TOWER]' if args.checkpoint is None else ''))
    if emb.shape[0] > emb.shape[1]:
        print(f'note: K={emb.shape[0]} > d={emb.shape[1]}: orthogonalization="qr" is not '
              f'possible with these anchors; use a text model with d >= K or "svd".',
              file=sys.stderr)


if __name__ == '__main__':
    raise SystemExit(run_tool(main))
