"""Localize objects in images with a trained TeD-Loc model.

    python tools/infer.py CONFIG CHECKPOINT INPUT [INPUT ...] [--out-dir outputs/]
        [--cam-threshold 0.35 | --cam-threshold work_dirs/x/metrics.json]
        [--topk 5] [--device cpu] [--batch-size 1] [--no-overlay] [--strict]
        [--trust-checkpoint] [--debug]

CONFIG: a config file or a model name of model-index.yml.
INPUT: image files and/or folders (searched recursively for image files).
Writes ``DIR/results.json`` (per image: top-k classes with names and scores, the box
in original pixels, the CAM threshold; see ``tedloc_mm.apis.LocalizationResult``)
and ``DIR/vis/<image>.png`` overlays (map as a heat map, predicted box in red, top
classes); DIR is ``--out-dir``, ``outputs/`` by default (MMDetection's demo default).
The CAM threshold is, in this order: the number given, the ``wsol/best_thr``
of a metrics JSON from ``tools/test.py --out``, the checkpoint's last validation, 0.5;
the tool prints it with its source, and results.json records both.
An image that cannot be read (truncated, not an image) is skipped with one line on
stderr, the others are localized, and the count of skipped images is printed at the
end (and listed in results.json's ``skipped``); ``--strict`` stops at the first one.
CHECKPOINT is read with ``torch.load(weights_only=True)`` (plus the globals of MMEngine's
Runner checkpoints); a file needing anything else is refused unless ``--trust-checkpoint``
(only for a file you trust: unpickling can run code). A file without the model's weights
is refused, naming the missing groups.
A user mistake (missing file, --cam-threshold outside [0, 1), a device this machine
lacks, a checkpoint without the model's weights) stops with one ``error:`` line and exit
status 2 (``--debug``: the traceback); the checks that need no model come before torch
is imported.
"""
import argparse
import json
import os
import os.path as osp
import sys

import tedloc_mm  # noqa: F401  (the import hooks of tedloc_mm.compat, first)
from tedloc_mm.model_index import resolve_config
from tedloc_mm.tool_errors import (UserError, add_debug_argument, check_device, check_file,
                                   positive_int, run_tool)

# torch, MMEngine and the model are imported in main(), after the arguments are checked


def cam_threshold_arg(value: str):
    """argparse ``type`` of --cam-threshold: a number in [0, 1) or an existing file."""
    try:
        x = float(value)
    except ValueError:
        if not osp.isfile(value):
            raise argparse.ArgumentTypeError(
                f'{value!r} is neither a number in [0, 1) nor an existing metrics JSON '
                'file (tools/test.py --out)') from None
        return value
    if not 0 <= x < 1:
        raise argparse.ArgumentTypeError(f'{value} is outside [0, 1)')
    return x


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='TeD-Loc inference on images',
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('config', help='model config file, or a model name of model-index.yml')
    parser.add_argument('checkpoint', help='trained TeD-Loc checkpoint')
    parser.add_argument('inputs', nargs='+', help='image files and/or folders')
    parser.add_argument('--out-dir', default='outputs', help='where results.json and vis/ go')
    parser.add_argument('--cam-threshold', default=None, type=cam_threshold_arg,
                        help='a number in [0, 1) or a metrics JSON of tools/test.py --out '
                             '(default: the checkpoint\'s last validation, else 0.5)')
    parser.add_argument('--topk', type=positive_int, default=5, help='classes per image')
    parser.add_argument('--device', default='cpu', help="'cpu', 'cuda', 'cuda:N'")
    parser.add_argument('--batch-size', type=positive_int, default=1)
    parser.add_argument('--no-overlay', action='store_true', help='only write the JSON')
    parser.add_argument('--alpha', type=float, default=0.5, help='heat map weight')
    parser.add_argument('--strict', action='store_true',
                        help='stop at the first unreadable image instead of skipping it')
    parser.add_argument('--trust-checkpoint', action='store_true',
                        help='read CHECKPOINT with full unpickling (weights_only=False): '
                        'only for a file you trust, as unpickling can run code')
    add_debug_argument(parser)
    return parser.parse_args(argv)


def collect_images(inputs):
    """[(path, output name)] for files and folders (recursive), in a stable order;
    FileNotFoundError naming an input that does not exist or a folder without images."""
    from mmengine.utils import scandir

    from tedloc_mm.fileio.image_io import IMAGE_SUFFIXES
    items = []
    for inp in inputs:
        if osp.isdir(inp):
            rels = sorted(scandir(inp, suffix=IMAGE_SUFFIXES, recursive=True))
            if not rels:
                raise FileNotFoundError(f'no image files ({", ".join(IMAGE_SUFFIXES[:7])}) '
                                        f'in folder {inp}')
            items += [(osp.join(inp, r), r) for r in rels]
        elif osp.isfile(inp):
            items.append((inp, osp.basename(inp)))
        else:
            raise FileNotFoundError(f'input not found: {inp}')
    seen, out = {}, []
    for path, name in items:
        stem = osp.splitext(name)[0]
        n = seen.get(stem, 0)
        seen[stem] = n + 1
        out.append((path, stem if n == 0 else f'{stem}_{n}'))
    return out


def readable_images(images, strict: bool = False):
    """(the images that decode, [(path, reason)] of those that do not); each skipped
    one gets a line on stderr, with ``strict`` the first raises ImageReadError."""
    from tedloc_mm.fileio.image_io import ImageReadError, read_image
    good, skipped = [], []
    for path, name in images:
        try:
            read_image(path)
        except ImageReadError as err:
            if strict:
                raise
            print(f'skipped: {err}', file=sys.stderr)
            skipped.append((path, str(err)))
            continue
        good.append((path, name))
    return good, skipped


def main(argv=None):
    args = parse_args(argv)
    # the checks that need no model, before torch is imported
    config = resolve_config(args.config)
    check_file(args.checkpoint, 'checkpoint')
    images, skipped = readable_images(collect_images(args.inputs), args.strict)
    if not images:
        raise UserError(f'none of the {len(skipped)} input image(s) could be read')
    check_device(args.device)   # imports torch
    from tedloc_mm.apis import WSOLInferencer
    inferencer = WSOLInferencer(config, args.checkpoint, device=args.device,
                                cam_threshold=args.cam_threshold,
                                trust_checkpoint=args.trust_checkpoint)
    model = inferencer.model
    print(f'CAM threshold {model.cam_threshold:.3f} from {model.cam_threshold_source}')
    os.makedirs(args.out_dir, exist_ok=True)
    vis_dir = None if args.no_overlay else osp.join(args.out_dir, 'vis')
    results = inferencer([p for p, _ in images], batch_size=args.batch_size,
                         topk=args.topk, as_dict=False, show_dir=vis_dir,
                         vis_names=[n for _, n in images], alpha=args.alpha)
    records = []
    for (path, name), res in zip(images, results):
        record = res.to_dict()
        if vis_dir is not None:
            record['vis_file'] = osp.relpath(osp.join(vis_dir, name + '.png'), args.out_dir)
        records.append(record)
    out = dict(config=config, checkpoint=args.checkpoint,
               cam_threshold=model.cam_threshold,
               cam_threshold_source=model.cam_threshold_source,
               class_names_known=bool(model.dataset_meta.get('classes')),
               results=records,
               skipped=[dict(img_path=p, reason=r) for p, r in skipped])
    json_file = osp.join(args.out_dir, 'results.json')
    with open(json_file, 'w') as f:
        json.dump(out, f, indent=2)
    print(f'{len(records)} image(s): results in {json_file}'
          + ('' if args.no_overlay else f', overlays in {osp.join(args.out_dir, "vis")}'))
    if skipped:
        print(f'{len(skipped)} unreadable image(s) skipped (listed above and in '
              f'{json_file}); --strict stops at the first', file=sys.stderr)
    return out


if __name__ == '__main__':
    raise SystemExit(run_tool(main))
