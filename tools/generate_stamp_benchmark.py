"""Write the semi-real stamp WSOL benchmark (photo cut-outs on photographs) to a folder.

    # fetch the Debian packages into CACHE (apt-get download + unpack, nothing installed)
    python tools/generate_stamp_benchmark.py --out data/stamp_wsol --fetch CACHE [--seed 0]
    # or use unpacked / installed packages
    python tools/generate_stamp_benchmark.py --out DIR --stamp-root /usr/share/tuxpaint/stamps \\
        --background-root /
        [--classes bird mammal ...] [--train 100] [--val 15] [--test 30] [--image-size 224]
        [--object-size 0.35 0.8] [--stamp-split 0.6 0.15 0.25] [--ext jpg]
        [--overwrite] [--reuse]

Packages: tuxpaint-stamps-default (the objects), mate-backgrounds and
plasma-workspace-wallpapers (the photographs). The layout and the generator are described
in ``tedloc_mm/embedded_benchmarks/stamps.py``; the same seed and sources give
byte-identical files.
"""
import argparse
import dataclasses
import os.path as osp
import time

from tedloc_mm.embedded_benchmarks.debian_packages import PackageFetchError, fetch_debian_package
from tedloc_mm.embedded_benchmarks.stamps import (BACKGROUND_PACKAGES, BACKGROUNDS, STAMP_CLASSES,
                                                STAMP_DIR, STAMP_PACKAGE,
                                                StampBenchmarkConfig, generate_stamp_benchmark)
from tedloc_mm.tool_errors import UserError, add_debug_argument, run_tool  # noqa: E402


def parse_args(argv=None):
    d = StampBenchmarkConfig()
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--out', required=True, help='output root (data_root of the dataset)')
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument('--fetch', metavar='CACHE',
                     help='apt-get download the packages into CACHE and unpack them there')
    src.add_argument('--stamp-root', help='folder of stamp categories (needs --background-root)')
    p.add_argument('--background-root', help='root under which the background files are')
    p.add_argument('--seed', type=int, default=d.seed)
    p.add_argument('--classes', nargs='+', default=list(d.classes),
                   help=f'names ({", ".join(STAMP_CLASSES)}) or stamp folders')
    p.add_argument('--train', type=int, default=d.num_train, help='train images per class')
    p.add_argument('--val', type=int, default=d.num_val, help='val images per class')
    p.add_argument('--test', type=int, default=d.num_test, help='test images per class')
    p.add_argument('--image-size', type=int, default=d.image_size, help='square side, px')
    p.add_argument('--object-size', type=float, nargs=2, default=d.object_size,
                   metavar=('MIN', 'MAX'), help='longer side of the object / image side')
    p.add_argument('--stamp-split', type=float, nargs=3, default=d.stamp_split,
                   metavar=('TRAIN', 'VAL', 'TEST'), help="fractions of each class's stamps")
    p.add_argument('--background-crop', type=float, nargs=2, default=d.background_crop,
                   metavar=('MIN', 'MAX'), help='crop side / shorter side of the photo')
    p.add_argument('--backgrounds', nargs='+', default=None,
                   help='background files relative to --background-root (default: the '
                   'curated wallpaper photos of the Debian packages)')
    p.add_argument('--ext', choices=('jpg', 'png'), default=d.image_ext)
    p.add_argument('--overwrite', action='store_true', help='replace an existing set')
    p.add_argument('--reuse', action='store_true',
                   help='do nothing if the folder already holds this exact set')
    add_debug_argument(p)
    a = p.parse_args(argv)
    if a.stamp_root and not a.background_root:
        p.error('--stamp-root needs --background-root')
    return a


def fetch_sources(cache: str, classes, log):
    """Fetch and unpack the packages; return (stamp_root, background_root)."""
    folders = sorted({f for c in classes for f in STAMP_CLASSES.get(c, (c,))})
    stamp_patterns = [f'./{STAMP_DIR}/{f}/*.png' for f in folders]
    root = fetch_debian_package(STAMP_PACKAGE, cache, stamp_patterns, log)
    for pkg in BACKGROUND_PACKAGES:
        fetch_debian_package(pkg, cache, [f'./{f}' for p, f in BACKGROUNDS if p == pkg], log)
    return osp.join(root, STAMP_DIR), cache


def main(argv=None):
    a = parse_args(argv)
    log = lambda m: print(m, flush=True)  # noqa: E731
    start = time.perf_counter()
    cfg = StampBenchmarkConfig(
        seed=a.seed, classes=tuple(a.classes), num_train=a.train, num_val=a.val,
        num_test=a.test, image_size=a.image_size, object_size=tuple(a.object_size),
        stamp_split=tuple(a.stamp_split), background_crop=tuple(a.background_crop),
        backgrounds=tuple(a.backgrounds) if a.backgrounds else None, image_ext=a.ext)
    try:
        if a.fetch:
            stamp_root, background_root = fetch_sources(a.fetch, a.classes, log)
            log(f'packages ready in {time.perf_counter() - start:.1f} s')
        else:
            stamp_root, background_root = a.stamp_root, a.background_root
        counts = generate_stamp_benchmark(a.out, stamp_root, background_root, cfg,
                                          overwrite=a.overwrite, reuse=a.reuse, logger=log)
    except PackageFetchError as e:
        raise UserError(f'{e} (the generator needs the Debian packages {STAMP_PACKAGE}, '
                        f'{", ".join(BACKGROUND_PACKAGES)}; '
                        'tools/generate_synthetic_benchmark.py is the package-free '
                        'fallback)') from e
    except (ValueError, FileExistsError, FileNotFoundError, RuntimeError, OSError) as e:
        raise UserError(str(e)) from e
    verb = 'kept existing' if counts['reused'] else 'wrote'
    print(f'{verb} {counts["train"]} / {counts["val"]} / {counts["test"]} '
          f'train / val / test images in {a.out} '
          f'({time.perf_counter() - start:.1f} s; config: {dataclasses.asdict(cfg)})')


if __name__ == '__main__':
    raise SystemExit(run_tool(main))
