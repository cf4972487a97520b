"""Evaluate saved score maps: a drop-in for wsolevaluation's ``evaluation.py``.

    python tools/analysis_tools/eval_scoremaps.py --scoremap_root SCOREMAPS \\
        --metadata_root metadata/ --mask_root dataset/ --dataset_name CUB --split test \\
        [--cam_curve_interval 0.01] [--multi_contour_eval] [--multi_iou_eval] \\
        [--iou_threshold_list 30 50 70] \\
        [--predictions preds.txt] [--out result.json] [--workers 2] [--resize_scoremaps]
        [--plot_dir DIR]

The arguments of ``clovaai/wsolevaluation``'s ``evaluation.py`` keep their names,
defaults and meanings, and so does the layout: metadata under
``<metadata_root>/<dataset_name>/<split>/``, one map per image id at
``<scoremap_root>/<image_id>.npy`` (224 x 224, values in [0, 1]), OpenImages masks
under ``<mask_root>/OpenImages/``. It prints the reference's lines
(``Loading and evaluating cams.``, for OpenImages ``Mask AUC on split S: X``, and
last ``localization: X``) with the same number, and before the last line both box
variants (MaxBoxAcc, MaxBoxAccV2 per IoU), Top-1/Top-5 Loc and classification
accuracy when ``--predictions`` is given, and PxAP. The progress bar goes to stderr.

``--plot_dir DIR`` (ours) also writes the curves behind the numbers: ``DIR/curves.json``
and ``DIR/curves.png`` (box accuracy vs CAM threshold per IoU, largest and all
contours, the best threshold marked; PxAP's precision-recall curve with masks) and,
with ``--predictions``, ``per_class.csv`` / ``per_class.md`` and ``failures.json``
(docs/en/evaluation_protocol.md). Without it the output is the same as before;
matplotlib is imported only with it.

Predictions file (``--predictions``), comma-separated, one line per image id::

    <image_id>,<c1>,<c2>,<c3>,<c4>,<c5>     top-k class indices, best first (k <= 5)
    <image_id>,<s_0>,<s_1>,...,<s_K-1>     or a score per class

See :func:`tedloc_mm.evaluation.scoremap_dir.read_predictions`.
Bad input (missing, unreadable, NaN, wrongly-shaped or out-of-range map, metadata
errors, missing mask or prediction lines) stops with a message naming the file.
"""
import argparse
import json
import os
import os.path as osp
import sys

import tedloc_mm  # noqa: F401  (the import hooks of tedloc_mm.compat, first)
from mmengine.utils import ProgressBar

from tedloc_mm.fileio.wsol_metadata import WSOLMetadataError
from tedloc_mm.evaluation.scoremap_dir import (DATASET_NAMES, ScoremapError,
                                               evaluate_scoremap_dir)


def str2bool(v):
    """The reference's ``config.str2bool``: ``--flag``, ``--flag true`` / ``false``."""
    if v.lower() in ('yes', 'true', 't', 'y', '1'):
        return True
    if v.lower() in ('no', 'false', 'f', 'n', '0'):
        return False
    raise argparse.ArgumentTypeError('Boolean value expected.')


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    # the reference's arguments (names, defaults, meanings)
    p.add_argument('--scoremap_root', type=str, default='train_log/scoremaps/',
                   help='root folder of the score maps: <root>/<image_id>.npy')
    p.add_argument('--metadata_root', type=str, default='metadata/',
                   help='root of the metadata: <root>/<dataset_name>/<split>/')
    p.add_argument('--mask_root', type=str, default='dataset/',
                   help='root of the masks (OpenImages): <root>/OpenImages/<mask path>')
    p.add_argument('--dataset_name', type=str, required=True, choices=DATASET_NAMES)
    p.add_argument('--split', type=str, required=True, help='val or test (or train)')
    p.add_argument('--cam_curve_interval', type=float, default=0.01,
                   help='CAM threshold step (the thresholds are np.arange(0, 1, step))')
    p.add_argument('--multi_contour_eval', type=str2bool, nargs='?', const=True,
                   default=False, help='the reported number uses all contours (V2)')
    p.add_argument('--multi_iou_eval', type=str2bool, nargs='?', const=True,
                   default=False, help='the reported number averages the IoU list')
    p.add_argument('--iou_threshold_list', nargs='+', type=int, default=[30, 50, 70],
                   help='IoU thresholds in percent')
    # ours
    p.add_argument('--predictions', type=str, default=None,
                   help='top-k classes or class scores per image id -> Top-1/5 Loc')
    p.add_argument('--predictions_format', choices=('auto', 'topk', 'scores'),
                   default='auto')
    p.add_argument('--resize_scoremaps', action='store_true',
                   help='accept maps of any size: bicubic resize to 224 + min-max '
                        'normalisation (as the reference\'s inference.py)')
    p.add_argument('--workers', type=int, default=1, help='evaluation threads')
    p.add_argument('--out', type=str, default=None, help='write the results as JSON')
    p.add_argument('--no_progress', action='store_true', help='no progress bar')
    p.add_argument('--plot_dir', type=str, default=None,
                   help='also write the curves (curves.json, curves.png) and, with '
                   '--predictions, the per-class table and failure breakdown here')
    return p.parse_args(argv)


def _fmt(x):
    return '{}'.format(x)   # as the reference prints its numbers (shortest repr)


def summary_lines(result: dict):
    """Our lines, printed before the reference's last ``localization:`` line."""
    m = result['metrics']
    lines = []
    ious = [t / 100 for t in result['iou_threshold_list']]
    if 'MaxBoxAcc' in m:
        lines.append(f'MaxBoxAcc (largest contour, IoU 50): {_fmt(m["MaxBoxAcc"])} '
                     f'at CAM threshold {m["best_thr"]:g}')
        lines.append('MaxBoxAcc per IoU: ' + ', '.join(
            f'{t * 100:g}: {_fmt(m[f"MaxBoxAcc@{t:g}"])}' for t in ious))
        lines.append(f'MaxBoxAccV2 (all contours, mean over IoU): {_fmt(m["MaxBoxAccV2"])}')
        lines.append('MaxBoxAccV2 per IoU: ' + ', '.join(
            f'{t * 100:g}: {_fmt(m[f"MaxBoxAccV2@{t:g}"])}' for t in ious))
    for k in (1, 5):
        if f'Top{k}Loc' in m:
            lines.append(f'Top-{k} Loc: {_fmt(m[f"Top{k}Loc"])} (at the MaxBoxAcc '
                         f'threshold: {_fmt(m[f"Top{k}Loc@best_thr"])})')
    for k in (1, 5):
        if f'Top{k}Cls' in m:
            lines.append(f'Top-{k} Cls: {_fmt(m[f"Top{k}Cls"])}')
    if 'PxAP' in m and result['dataset_name'] != 'OpenImages':
        lines.append(f'PxAP: {_fmt(m["PxAP"])}')
    return lines


def plot_analysis(result: dict, args) -> None:
    """``curves.png`` from the ``curves.json`` just written (matplotlib imported here);
    the list of files goes to stderr, so that stdout stays the reference's."""
    from tedloc_mm.analysis.wsol_curves import load_curves, plot_wsol_curves
    files = result['analysis']
    png = osp.join(args.plot_dir, 'curves.png')
    plot_wsol_curves([(f'{args.dataset_name} {args.split}',
                       load_curves([files['curves']])[0])], png)
    files['curves_png'] = png
    print(f'curves and tables written to {args.plot_dir}: '
          + ', '.join(sorted(osp.basename(p) for p in files.values())), file=sys.stderr)


def main(argv=None) -> dict:
    args = parse_args(argv)
    print('Loading and evaluating cams.')
    sys.stdout.flush()
    bar = []

    def on_start(num):
        if not args.no_progress:
            bar.append(ProgressBar(num, file=sys.stderr))

    def progress(num):
        if bar:
            bar[0].update(num)

    result = evaluate_scoremap_dir(
        args.scoremap_root, args.metadata_root, args.mask_root, args.dataset_name,
        args.split, cam_curve_interval=args.cam_curve_interval,
        iou_threshold_list=args.iou_threshold_list,
        multi_contour_eval=args.multi_contour_eval, multi_iou_eval=args.multi_iou_eval,
        predictions=args.predictions, predictions_format=args.predictions_format,
        resize=args.resize_scoremaps, workers=args.workers, progress=progress,
        on_start=on_start, analysis_dir=args.plot_dir)
    if bar:
        sys.stderr.write('\n')
    if result['predictions_ignored']:
        print(f'note: {result["predictions_ignored"]} line(s) of {args.predictions} name '
              'images outside this split; ignored', file=sys.stderr)
    for line in summary_lines(result):
        print(line)
    if args.dataset_name == 'OpenImages':
        print('Mask AUC on split {}: {}'.format(args.split, result['localization']))
    print('localization: {}'.format(result['localization']))
    if args.plot_dir:
        plot_analysis(result, args)
    if args.out:
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w', encoding='utf-8') as f:
            json.dump(result, f, indent=2)
    return result


def cli(argv=None) -> int:
    """``main`` with bad input reported as one line on stderr and exit status 2."""
    try:
        main(argv)
    except (ScoremapError, WSOLMetadataError, FileNotFoundError) as err:
        print(f'eval_scoremaps.py: error: {err}', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    raise SystemExit(cli())
