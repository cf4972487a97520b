"""Localize objects in images with a trained TeD-Loc model.

    python tools/infer.py CONFIG CHECKPOINT INPUT [INPUT ...] --out-dir DIR
        [--cam-threshold 0.35 | --cam-threshold work_dirs/x/metrics.json]
        [--topk 5] [--device cpu] [--batch-size 1] [--no-overlay] [--trust-checkpoint]

INPUT: image files and/or folders (searched recursively for image files).
Writes ``DIR/results.json`` (per image: top-k classes with names and scores, the box
in original pixels, the CAM threshold; see ``tedloc_mm.apis.LocalizationResult``)
and ``DIR/vis/<image>.png`` overlays (map as a heat map, predicted box in red, top
classes). The CAM threshold is, in this order: the number given, the ``wsol/best_thr``
of a metrics JSON from ``tools/test.py --out``, the checkpoint's last validation, 0.5.
CHECKPOINT is read with ``torch.load(weights_only=True)`` (plus the globals of MMEngine's
Runner checkpoints); a file needing anything else is refused unless ``--trust-checkpoint``
(only for a file you trust: unpickling can run code). A file without the model's weights
is refused, naming the missing groups.
"""
import argparse
import json
import os
import os.path as osp

import tedloc_mm  # noqa: F401  (the import hooks of tedloc_mm.compat, first)
from mmengine.utils import scandir

from tedloc_mm.apis import WSOLInferencer
from tedloc_mm.apis.wsol_inferencer import IMAGE_SUFFIXES


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='TeD-Loc inference on images')
    parser.add_argument('config', help='model config file')
    parser.add_argument('checkpoint', help='trained TeD-Loc checkpoint')
    parser.add_argument('inputs', nargs='+', help='image files and/or folders')
    parser.add_argument('--out-dir', required=True, help='where results.json and vis/ go')
    parser.add_argument('--cam-threshold', default=None,
                        help='a number in [0, 1) or a metrics JSON of tools/test.py --out '
                             '(default: the checkpoint\'s last validation, else 0.5)')
    parser.add_argument('--topk', type=int, default=5, help='classes per image')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--batch-size', type=int, default=1)
    parser.add_argument('--no-overlay', action='store_true', help='only write the JSON')
    parser.add_argument('--alpha', type=float, default=0.5, help='heat map weight')
    parser.add_argument('--trust-checkpoint', action='store_true',
                        help='read CHECKPOINT with full unpickling (weights_only=False): '
                        'only for a file you trust, as unpickling can run code')
    return parser.parse_args(argv)


def collect_images(inputs):
    """[(path, output name)] for files and folders (recursive), in a stable order."""
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


def parse_threshold(value):
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return value  # a metrics file path


def main(argv=None):
    args = parse_args(argv)
    images = collect_images(args.inputs)
    inferencer = WSOLInferencer(args.config, args.checkpoint, device=args.device,
                                cam_threshold=parse_threshold(args.cam_threshold),
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
    out = dict(config=args.config, checkpoint=args.checkpoint,
               cam_threshold=model.cam_threshold,
               cam_threshold_source=model.cam_threshold_source,
               class_names_known=bool(model.dataset_meta.get('classes')),
               results=records)
    json_file = osp.join(args.out_dir, 'results.json')
    with open(json_file, 'w') as f:
        json.dump(out, f, indent=2)
    print(f'{len(records)} image(s): results in {json_file}'
          + ('' if args.no_overlay else f', overlays in {osp.join(args.out_dir, "vis")}'))
    return out


if __name__ == '__main__':
    main()
