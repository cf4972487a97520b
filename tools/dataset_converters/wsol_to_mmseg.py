"""Export a WSOL split's masks to MMSegmentation's data set layout: the true masks
(to score against), or a localizer's maps as pseudo-masks.

    # true masks of val / test (what IoUMetric scores against)
    python tools/dataset_converters/wsol_to_mmseg.py true-masks \\
        --data-root D --split test --out OUT/gt
    # pseudo-masks from a CAM store (tools/generate_cams.py); class = the image label
    python tools/dataset_converters/wsol_to_mmseg.py cam-store STORE \\
        --data-root D --split train --out OUT/cam --fg-thr val_metrics.json [--bg-thr 0.2]
    # a localizer (TeD-Loc, GradCAMLocalizer): config + checkpoint, through WSOLInferencer
    python tools/dataset_converters/wsol_to_mmseg.py localizer CONFIG CHECKPOINT \\
        --data-root D --split test --out OUT/tedloc_test [--class-source pred|gt]
    # saved score maps <ROOT>/<image id>.npy, classes from a predictions file or labels
    python tools/dataset_converters/wsol_to_mmseg.py scoremaps ROOT \\
        --data-root D --split test --out OUT/x --fg-thr 0.4 --predictions preds.txt

Output (docs/en/segmentation.md): ``OUT/ann_dir/<id>.png`` (0 background, k + 1 class k,
255 ignored), ``OUT/splits/<split>.txt``, ``OUT/img_dir`` (a link to the data root) and
``OUT/seg_meta.json`` (classes, palette, thresholds, the class used per image), which
MMSegmentation's ``BaseSegDataset`` loads.

Thresholds (CAM thresholds in [0, 1), the WSOL box protocol's binarisation):
``--fg-thr`` is a number or the metrics JSON of ``tools/test.py --out`` on the val split
(its ``wsol/best_thr``). Default for ``localizer``: the checkpoint's last validation
threshold (a TeD-Loc checkpoint holds it), else 0.5; the other sources need it.
``--bg-thr`` (default: ``--fg-thr``, no band) marks pixels between the two as 255.
Masks that will be scored must have no band: IoUMetric counts a predicted 255 as a miss.

Class of the foreground: ``--class-source gt`` (the image label, as WSOL training has
it: the default except for ``localizer``) or ``pred`` (the localizer's top-1, as a
segmenter must at test time: the default for ``localizer``; other sources need
``--predictions``). A GradCAMLocalizer is run with ``cam_class='pred'`` (the inferencer
has no labels).

Bad input stops with a message naming the item: a split without masks for
``true-masks``, a map whose size is neither the image's nor the source's grid, a class id
outside the class list, ids with two extensions.
"""
import argparse
import os.path as osp
import time

import tedloc_mm  # noqa: F401  (the import hooks of tedloc_mm.compat, first)
from tedloc_mm.tool_errors import UserError, add_debug_argument, run_tool  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog='Examples and details: see the module docstring.')
    sub = p.add_subparsers(dest='source', required=True)
    parsers = {
        'true-masks': sub.add_parser('true-masks', help="the split's true masks"),
        'cam-store': sub.add_parser('cam-store', help='maps of a CAM store'),
        'scoremaps': sub.add_parser('scoremaps', help='saved score maps <root>/<id>.npy'),
        'localizer': sub.add_parser('localizer', help='a localizer config + checkpoint'),
    }
    parsers['cam-store'].add_argument('store', help='CAM store folder')
    parsers['scoremaps'].add_argument('scoremap_root', help='<root>/<image id>.npy')
    loc = parsers['localizer']
    loc.add_argument('config', help='localizer config (TeDLoc, GradCAMLocalizer)')
    loc.add_argument('checkpoint', help='its checkpoint')
    loc.add_argument('--batch-size', type=int, default=16)
    loc.add_argument('--device', default='cpu')
    loc.add_argument('--cfg-options', nargs='+', default=None,
                     help='key=value overrides of the localizer config')
    for name, q in parsers.items():
        q.add_argument('--data-root', required=True, help='WSOL data root (image ids)')
        q.add_argument('--metadata-root', default=None, help='default DATA_ROOT/metadata')
        q.add_argument('--mask-root', default=None, help='root of the masks; default DATA_ROOT')
        q.add_argument('--split', required=True, help='train, val or test')
        q.add_argument('--out', required=True, help='export folder (splits accumulate)')
        if name != 'true-masks':
            q.add_argument('--fg-thr', default=None,
                           help='CAM threshold: a number or a metrics JSON (wsol/best_thr)')
            q.add_argument('--bg-thr', type=float, default=None,
                           help='below it background, between the two 255 (ignored)')
            q.add_argument('--class-source', choices=('gt', 'pred'),
                           default='pred' if name == 'localizer' else 'gt',
                           help='image label (gt) or predicted top-1 class (pred)')
            q.add_argument('--predictions', default=None,
                           help="predicted classes for 'pred' without a localizer")
    add_debug_argument(p)
    return p.parse_args(argv)


def localizer_outputs(args, infos):
    """(maps at the original size, top-1 classes, top-1 scores, (threshold, source))
    of a localizer on the split, through WSOLInferencer."""
    from mmengine.config import Config, DictAction

    from tedloc_mm.apis import WSOLInferencer
    options = {}
    if args.cfg_options:
        q = argparse.ArgumentParser()
        q.add_argument('--o', nargs='+', action=DictAction)
        options = q.parse_args(['--o', *args.cfg_options]).o
    if 'cam_class' in Config.fromfile(args.config).model:
        options.setdefault('model.cam_class', 'pred')  # no labels in the inferencer
    inferencer = WSOLInferencer(args.config, args.checkpoint, device=args.device,
                                cfg_options=options or None, show_progress=False)
    paths = [osp.join(args.data_root, info['img_id']) for info in infos]
    results = inferencer(paths, batch_size=args.batch_size, topk=1)
    maps, classes, scores = {}, {}, {}
    for info, result in zip(infos, results):
        img_id = info['img_id']
        maps[img_id] = result['pred_map']
        classes[img_id] = int(result['topk'][0]['label'])
        scores[img_id] = float(result['topk'][0]['score'])
    model = inferencer.model
    return maps, classes, scores, (float(model.cam_threshold), model.cam_threshold_source)


def main(argv=None):
    args = parse_args(argv)
    from tedloc_mm.evaluation import resolve_cam_threshold
    from tedloc_mm.evaluation.scoremap_dir import ScoremapError
    from tedloc_mm.fileio.seg_layout import SegExportWriter
    from tedloc_mm.fileio.seg_labels import SegLabelError
    from tedloc_mm.fileio.wsol_metadata import WSOLMetadataError
    from tedloc_mm.pseudo_labels import seg_masks

    start = time.perf_counter()
    try:
        infos, names = seg_masks.split_infos(args.data_root, args.split, args.metadata_root)
        num_classes = len(names)
        writer = SegExportWriter(args.out, args.data_root, names)
        if args.source == 'true-masks':
            labels = seg_masks.true_mask_labels(infos, num_classes,
                                                args.mask_root or args.data_root, args.split)
            settings = dict(source='true masks')
        else:
            scores = None
            if args.source == 'localizer':
                maps, predicted, scores, checkpoint_thr = localizer_outputs(args, infos)
                classes = (predicted if args.class_source == 'pred' else
                           seg_masks.image_classes(infos, 'gt'))
                fg_thr, thr_source = (resolve_cam_threshold(args.fg_thr)
                                      if args.fg_thr is not None else checkpoint_thr)
                pairs = ((info['img_id'], maps[info['img_id']]) for info in infos)
                sides, source = (), f'localizer {args.config} {args.checkpoint}'
            else:
                if args.fg_thr is None:
                    raise UserError('--fg-thr is needed (a number, or the metrics JSON of '
                             "the localizer's validation: tools/test.py --out)")
                fg_thr, thr_source = resolve_cam_threshold(args.fg_thr)
                classes = seg_masks.image_classes(infos, args.class_source, args.predictions)
                if args.source == 'cam-store':
                    from tedloc_mm.fileio.cam_store import CAMStore
                    pairs = seg_masks.cam_store_maps(args.store, infos)
                    sides = (CAMStore(args.store).resolution, )
                    source = f'CAM store {args.store}'
                else:
                    from tedloc_mm.evaluation.scoremap_dir import RESIZE_LENGTH
                    pairs = seg_masks.scoremap_maps(args.scoremap_root, infos)
                    sides, source = (RESIZE_LENGTH, ), f'score maps {args.scoremap_root}'
            bg_thr = fg_thr if args.bg_thr is None else args.bg_thr
            labels = seg_masks.map_labels(infos, num_classes, pairs, classes, fg_thr, bg_thr,
                                          sides, source, scores)
            settings = dict(source=source, class_source=args.class_source, fg_thr=fg_thr,
                            fg_thr_source=thr_source, bg_thr=bg_thr)
        count = writer.write_split(args.split, labels, settings)
    except (SegLabelError, WSOLMetadataError, ScoremapError, FileNotFoundError,
            KeyError) as err:
        raise UserError(str(err)) from err
    thresholds = ('' if args.source == 'true-masks' else
                  f"; fg_thr {settings['fg_thr']} ({settings['fg_thr_source']}), "
                  f"bg_thr {settings['bg_thr']}, class {settings['class_source']}")
    print(f'{args.out}: {count} labels of split {args.split!r} from '
          f"{settings['source']}{thresholds} in {time.perf_counter() - start:.1f} s")


if __name__ == '__main__':
    raise SystemExit(run_tool(main))
