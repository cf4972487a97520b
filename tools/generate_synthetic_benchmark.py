"""Write the synthetic WSOL benchmark (images, boxes, masks, metadata) to a folder.

    python tools/generate_synthetic_benchmark.py --out data/synthetic_wsol [--seed 0]
        [--num-classes 8] [--train 120] [--val 20] [--test 40] [--image-size 96]
        [--part-size 0.18 0.26] [--max-part-box-ratio 0.12] [--clutter 2 5]
        [--decoy-prob 0.4] [--instances 1 1] [--ignore-border 0] [--ext png]
        [--overwrite] [--reuse]

The layout and the generator are described in ``tedloc_mm/embedded_benchmarks/gliders.py``;
the same seed and options give byte-identical files.
"""
import argparse
import dataclasses
import time

from tedloc_mm.embedded_benchmarks.gliders import SyntheticWSOLConfig, generate_synthetic_wsol
from tedloc_mm.tool_errors import UserError, add_debug_argument, run_tool  # noqa: E402


def parse_args(argv=None):
    d = SyntheticWSOLConfig()
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--out', required=True, help='output root (data_root of the dataset)')
    p.add_argument('--seed', type=int, default=d.seed)
    p.add_argument('--num-classes', type=int, default=d.num_classes)
    p.add_argument('--train', type=int, default=d.num_train, help='train images per class')
    p.add_argument('--val', type=int, default=d.num_val, help='val images per class')
    p.add_argument('--test', type=int, default=d.num_test, help='test images per class')
    p.add_argument('--image-size', type=int, default=d.image_size, help='square side, px')
    p.add_argument('--body-length', type=float, nargs=2, default=d.body_length,
                   metavar=('MIN', 'MAX'), help='body long axis / image side')
    p.add_argument('--part-size', type=float, nargs=2, default=d.part_size,
                   metavar=('MIN', 'MAX'), help='head diameter / body length')
    p.add_argument('--max-part-box-ratio', type=float, default=d.max_part_box_ratio,
                   help='largest head area / object box area')
    p.add_argument('--clutter', type=int, nargs=2, default=d.num_clutter,
                   metavar=('MIN', 'MAX'), help='background clutter shapes per image')
    p.add_argument('--clutter-head-colour-prob', type=float,
                   default=d.clutter_head_colour_prob)
    p.add_argument('--decoy-prob', type=float, default=d.decoy_prob,
                   help='probability of a head-less decoy body')
    p.add_argument('--instances', type=int, nargs=2, default=d.instances,
                   metavar=('MIN', 'MAX'), help='objects per image (1 or 2)')
    p.add_argument('--ignore-border', type=int, default=d.ignore_border,
                   help='width (px) of a PxAP ignore band around objects; 0 = none')
    p.add_argument('--ext', choices=('png', 'jpg'), default=d.image_ext)
    p.add_argument('--overwrite', action='store_true', help='replace an existing set')
    p.add_argument('--reuse', action='store_true',
                   help='do nothing if the folder already holds this exact set (with '
                   '--overwrite: keep it if identical, else replace it)')
    add_debug_argument(p)
    return p.parse_args(argv)


def main(argv=None):
    a = parse_args(argv)
    cfg = SyntheticWSOLConfig(
        seed=a.seed, num_classes=a.num_classes, num_train=a.train, num_val=a.val,
        num_test=a.test, image_size=a.image_size, body_length=tuple(a.body_length),
        part_size=tuple(a.part_size), max_part_box_ratio=a.max_part_box_ratio,
        num_clutter=tuple(a.clutter), clutter_head_colour_prob=a.clutter_head_colour_prob,
        decoy_prob=a.decoy_prob, instances=tuple(a.instances),
        ignore_border=a.ignore_border, image_ext=a.ext)
    start = time.perf_counter()
    try:
        counts = generate_synthetic_wsol(a.out, cfg, overwrite=a.overwrite, reuse=a.reuse,
                                         logger=lambda m: print(m, flush=True))
    except (ValueError, FileExistsError, RuntimeError) as e:
        raise UserError(str(e)) from e
    verb = 'kept existing' if counts['reused'] else 'wrote'
    print(f'{verb} {counts["train"]} / {counts["val"]} / {counts["test"]} '
          f'train / val / test images in {a.out} '
          f'({time.perf_counter() - start:.1f} s; config: {dataclasses.asdict(cfg)})')


if __name__ == '__main__':
    raise SystemExit(run_tool(main))
