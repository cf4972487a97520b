"""Evaluate saved score maps: a drop-in for wsolevaluation's ``evaluation.py``.

    python tools/analysis_tools/eval_scoremaps.py --scoremap_root SCOREMAPS \\
        --metadata_root metadata/ --mask_root dataset/ --dataset_name CUB --split test \\
        [--cam_curve_interval 0.01] [--multi_contour_eval] [--multi_iou_eval] \\
        [--iou_threshold_list 30 50 70] \\
        [--predictions preds.txt] [--out result.json] [--workers 2] [--resize_scoremaps]
        [--plot_dir DIR] [--eval_size 224] [--debug]

The arguments of ``clovaai/wsolevaluation``'s ``evaluation.py`` keep their names,
defaults and meanings, and so does the layout: metadata under
``<metadata_root>/<dataset_name>/<split>/``, one map per image id at
``<scoremap_root>/<image_id>.npy`` (224 x 224, values in [0, 1]), OpenImages masks
under ``<mask_root>/OpenImages/``. Our benchmarks' layout is read directly too:
``--metadata_root <data_root>/metadata`` (splits in ``metadata/<split>``) and
``--mask_root <data_root>`` (mask paths relative to it).

A folder written by ``tools/test.py --save-scoremaps DIR`` (``WSOLMetric(scoremap_dir=)``)
gives the run's numbers to the last digit with ``--eval_size`` and
``--cam_curve_interval`` (and ``--iou_threshold_list``) of the run and
``--predictions DIR/predictions.txt``: ``DIR/scoremaps.json`` holds them and the
command (docs/en/evaluation_protocol.md). It prints the reference's lines
(``Loading and evaluating cams.``, for OpenImages ``Mask AUC on split S: X``, and
last ``localization: X``) with the same number, and before the last line both box
variants (MaxBoxAcc, MaxBoxAccV2 per IoU), Top-1/Top-5 Loc and classification
accuracy when ``--predictions`` is given, and PxAP. The progress bar goes to stderr.

``--plot_dir DIR`` (ours) also writes the per-image file ``DIR/per_image.jsonl``
(boxes at the MaxBoxAcc threshold; tools/analysis_tools/analyze_results.py reads it) and
the curves behind the numbers: ``DIR/curves.json``
and ``DIR/curves.png`` (box accuracy vs CAM threshold per IoU, largest and all
contours, the best threshold marked; PxAP's precision-recall curve with masks) and,
with ``--predictions``, ``per_class.csv`` / ``per_class.md`` and ``failures.json``
(docs/en/evaluation_protocol.md). Without it the output is the same as before;
matplotlib is imported only with it.

Predictions file (``--predictions``), comma-separated, one line per image id::

    <image_id>,<c1>,<c2>,<c3>,<c4>,<c5>     top-k class indices, best first (k <= 5)
    <image_id>,<s_0>,<s_1>,...,<s_K-1>     or a score per class

See :func:`tedloc_mm.evaluation.scoremap_dir.read_predictions`. Top-1 metrics need one
class per line; Top-5 metrics are printed as n/a when some top-k line has fewer than 5
classes (score vectors give the top min(5, K) classes).
Bad input (missing, unreadable, NaN, wrongly-shaped or out-of-range map, metadata
errors, missing mask or prediction lines) stops with a message naming the file.
"""
import argparse
import json
import os
import os.path as osp
import sys

import tedloc_mm  # noqa: F401  (the import hooks of tedloc_mm.compat, first)

from tedloc_mm.tool_errors import UserError, add_debug_argument, run_tool

# the evaluation package (numba, OpenCV) is imported in main(), so that --help answers
# at once


def str2bool(v):
    """The reference's ``config.str2bool``: ``--flag``, ``--flag true`` / ``false``."""
    if v.lower() in ('yes', 'true', 't', 'y', '1'):
        return True
    if v.lower() in ('no', 'false', 'f', 'n', '0'):
        return False
    raise argparse.ArgumentTypeError('Boolean value expected.')


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    # the reference's arguments (names, defaults, meanings)
    p.add_argument('--scoremap_root', type=str, default='train_log/scoremaps/',
                   help='root folder of the score maps: <root>/<image_id>.npy')
    p.add_argument('--metadata_root', type=str, default='metadata/',
                   help='root of the metadata: <root>/<dataset_name>/<split>/')
    p.add_argument('--mask_root', type=str, default='dataset/',
                   help='root of the masks (OpenImages): <root>/OpenImages/<mask path>')
    p.add_argument('--dataset_name', type=str, required=True,
                   help='CUB, ILSVRC or OpenImages (OpenImages: masks, PxAP is the number)')
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
                   default='auto', help='how to read --predictions (auto: top-k lines '
                   'when every line has at most 5 integers)')
    p.add_argument('--resize_scoremaps', action='store_true',
                   help='accept maps of any size: bicubic resize to --eval_size + min-max '
                        'normalisation (as the reference\'s inference.py)')
    p.add_argument('--workers', type=int, default=1, help='evaluation threads')
    p.add_argument('--eval_size', type=int, default=224,
                   help='side of the maps (the reference: 224; a run of WSOLMetric: its '
                   'eval_size, recorded in <scoremap_root>/scoremaps.json)')
    p.add_argument('--out', type=str, default=None, help='write the results as JSON')
    p.add_argument('--no_progress', action='store_true', help='no progress bar')
    p.add_argument('--plot_dir', type=str, default=None,
                   help='also write the per-image file (per_image.jsonl), the curves '
                   '(curves.json, curves.png) and, with --predictions, the per-class table '
                   'and failure breakdown here')
    add_debug_argument(p)
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
    na = 'n/a (some prediction lines carry fewer than 5 classes)'
    for k in (1, 5):
        if f'Top{k}Loc' in m:
            lines.append(f'Top-{k} Loc: {_fmt(m[f"Top{k}Loc"])} (at the MaxBoxAcc '
                         f'threshold: {_fmt(m[f"Top{k}Loc@best_thr"])})')
        elif k == 5 and result.get('top5_na') and 'Top1Loc' in m:
            lines.append(f'Top-5 Loc: {na}')
    for k in (1, 5):
        if f'Top{k}Cls' in m:
            lines.append(f'Top-{k} Cls: {_fmt(m[f"Top{k}Cls"])}')
        elif k == 5 and result.get('top5_na'):
            lines.append(f'Top-5 Cls: {na}')
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


def note_run_settings(args) -> None:
    """A note on stderr when the folder's scoremaps.json (written by WSOLMetric) names
    another evaluation size or CAM threshold step than the ones given."""
    path = osp.join(args.scoremap_root, 'scoremaps.json')
    if not osp.isfile(path):
        return
    with open(path, encoding='utf-8') as f:
        meta = json.load(f)
    if meta.get('eval_size') and meta['eval_size'][0] != args.eval_size:
        print(f'note: {path} says the maps are {meta["eval_size"]} (the run\'s '
              f'evaluation size); --eval_size is {args.eval_size}', file=sys.stderr)
    if meta.get('cam_curve_interval') not in (None, args.cam_curve_interval):
        print(f'note: {path} says the run used --cam_curve_interval '
              f'{meta["cam_curve_interval"]:g}; given {args.cam_curve_interval:g}',
              file=sys.stderr)


def main(argv=None) -> dict:
    args = parse_args(argv)
    from mmengine.utils import ProgressBar

    from tedloc_mm.evaluation.scoremap_dir import DATASET_NAMES, evaluate_scoremap_dir
    if args.dataset_name not in DATASET_NAMES:
        raise UserError(f'--dataset_name {args.dataset_name!r}: expected one of '
                        f'{", ".join(DATASET_NAMES)}')
    note_run_settings(args)
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
        resize=args.resize_scoremaps, workers=args.workers, size=args.eval_size,
        progress=progress,
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
    """``main`` with bad input reported as one line on stderr and exit status 2
    (:func:`tedloc_mm.tool_errors.run_tool`)."""
    return run_tool(main, argv, 'eval_scoremaps.py')


if __name__ == '__main__':
    raise SystemExit(run_tool(main))
