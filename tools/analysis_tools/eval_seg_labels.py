"""Score exported masks (e.g. a localizer's binarised maps) against the exported true
masks with MMSegmentation's IoUMetric (mIoU, aAcc, mAcc) and FG-IoU / BG-IoU.

    python tools/analysis_tools/eval_seg_labels.py --pred OUT/tedloc_test --gt OUT/gt \\
        --split test [--out metrics.json]

Both folders are exports of tools/dataset_converters/wsol_to_mmseg.py. Every image of
the split needs a predicted label of its size whose values are in the class list; a 255
in a prediction is scored as IoUMetric scores it (a miss): export scored masks without
an ignore band. A segmenter is scored by tools/test.py with its config's IoUMetric.
"""
import argparse
import json
import time

import tedloc_mm  # noqa: F401  (the import hooks of tedloc_mm.compat, first)
from tedloc_mm.tool_errors import UserError, add_debug_argument, run_tool  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--pred', required=True, help='export folder of the masks to score')
    p.add_argument('--gt', required=True, help='export folder of the true masks')
    p.add_argument('--split', default='test')
    p.add_argument('--out', default=None, help='write the metrics as JSON')
    add_debug_argument(p)
    args = p.parse_args(argv)
    from tedloc_mm.evaluation.seg_metric import evaluate_seg_export
    from tedloc_mm.fileio.seg_labels import SegLabelError
    start = time.perf_counter()
    try:
        metrics = evaluate_seg_export(args.pred, args.gt, args.split)
    except (SegLabelError, FileNotFoundError) as err:
        raise UserError(str(err)) from err
    print(json.dumps(metrics), f'({time.perf_counter() - start:.1f} s)')
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(metrics, f, indent=2)


if __name__ == '__main__':
    raise SystemExit(run_tool(main))
