"""Draw the WSOL curves of one or several runs on one figure.

    python tools/analysis_tools/plot_wsol_curves.py RUN [RUN ...] --out curves.png
        [--legend NAME [NAME ...]] [--title TEXT]

Each RUN is a ``curves.json`` (written by ``tools/test.py --analysis-dir DIR`` or
``tools/analysis_tools/eval_scoremaps.py --plot_dir DIR``) or the folder holding it.
The figure (tedloc_mm.analysis.wsol_curves.plot_wsol_curves): box accuracy against the
CAM threshold per IoU threshold, largest contour (MaxBoxAcc) and all contours
(MaxBoxAccV2), the best threshold of each run marked, and PxAP's precision-recall
curve when a run evaluated masks; colour = run, line style = IoU.
"""
import argparse
import os
import os.path as osp

from tedloc_mm.analysis.wsol_curves import load_curves, plot_wsol_curves
from tedloc_mm.tool_errors import UserError, add_debug_argument, run_tool  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('runs', nargs='+', help='curves.json files or folders holding one')
    p.add_argument('--out', required=True, help='figure file (.png, .pdf, .svg)')
    p.add_argument('--legend', nargs='+', default=None,
                   help='one name per run (default: the folder name of each file)')
    p.add_argument('--title', default=None, help='figure title')
    add_debug_argument(p)
    return p.parse_args(argv)


def main(argv=None) -> str:
    args = parse_args(argv)
    paths = [osp.join(r, 'curves.json') if osp.isdir(r) else r for r in args.runs]
    for path in paths:
        if not osp.isfile(path):
            raise FileNotFoundError(f'curves file not found: {path}')
    names = args.legend or [osp.basename(osp.dirname(osp.abspath(p))) for p in paths]
    if len(names) != len(paths):
        raise UserError(f'--legend has {len(names)} names for {len(paths)} runs')
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    try:
        curves = load_curves(paths)
    except ValueError as err:    # not a curves.json of tools/test.py / eval_scoremaps.py
        raise UserError(str(err)) from err
    plot_wsol_curves(list(zip(names, curves)), args.out, title=args.title)
    print(f'curves of {len(paths)} run(s) written to {args.out}')
    return args.out


def cli(argv=None) -> int:
    return run_tool(main, argv, 'plot_wsol_curves.py')


if __name__ == '__main__':
    raise SystemExit(run_tool(main))
