"""Draw masks of a few images side by side: one row per image, one column per mask
source, class colours blended into the image, captions under each cell.

    python tools/analysis_tools/draw_seg_masks.py --gt OUT/gt --split test \\
        --column "(i) CAM=OUT/cam_test" --column "(iii) segmenter=WORK/test_pred" \\
        --num 6 --out masks.png

``--gt``: the export of the true masks (its images, classes and palette; drawn as the
second column). A column folder is an export of wsol_to_mmseg.py or a folder of
``<image basename>.png`` as MMSegmentation's ``IoUMetric(output_dir=...)`` writes
them. Rows: ``--num`` images spread over the split, or ``--ids``.
"""
import argparse
import os.path as osp

import tedloc_mm  # noqa: F401  (the import hooks of tedloc_mm.compat, first)
from tedloc_mm.tool_errors import UserError, add_debug_argument, run_tool  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--gt', required=True, help='export folder of the true masks')
    p.add_argument('--split', default='test')
    p.add_argument('--column', action='append', default=[], metavar='TITLE=FOLDER')
    p.add_argument('--num', type=int, default=6, help='rows, spread over the split')
    p.add_argument('--ids', nargs='+', default=None, help='image ids of the rows instead')
    p.add_argument('--cell', type=int, default=224, help='cell side in pixels')
    p.add_argument('--out', required=True, help='PNG file')
    add_debug_argument(p)
    args = p.parse_args(argv)
    from tedloc_mm.fileio.seg_layout import read_seg_meta
    from tedloc_mm.visualization.seg_mask_grid import draw_mask_grid
    meta = read_seg_meta(args.gt)
    if args.split not in meta['splits']:
        raise UserError(f'{args.gt} has no split {args.split!r}')
    ids = args.ids or list(meta['splits'][args.split]['images'])
    if not args.ids:
        step = max(1, len(ids) // args.num)
        ids = ids[::step][:args.num]
    columns = [('image', None), ('true mask', args.gt)]
    for spec in args.column:
        if '=' not in spec:
            raise UserError(f'--column {spec!r} is not TITLE=FOLDER')
        columns.append(tuple(spec.split('=', 1)))
    paths = [osp.join(args.gt, 'img_dir', img_id) for img_id in ids]
    try:
        size = draw_mask_grid(paths, ids, columns, meta['classes'], meta['palette'],
                              args.out, cell=args.cell)
    except FileNotFoundError as err:
        raise UserError(str(err)) from err
    print(f'{args.out}: {len(ids)} images x {len(columns)} columns, {size[0]} x {size[1]} px')


if __name__ == '__main__':
    raise SystemExit(run_tool(main))
