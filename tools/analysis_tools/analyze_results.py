"""Success and failure images of a WSOL test run, in MMPretrain's analyze_results style.

    python tools/analysis_tools/analyze_results.py PER_IMAGE_FILE --scoremaps MAPS_DIR \\
        --out-dir DIR [--topk 8] [--data-root ROOT]
    python tools/analysis_tools/analyze_results.py CONFIG CHECKPOINT PER_IMAGE_FILE \\
        --out-dir DIR [--topk 8] [--cfg-options k=v ...] [--trust-checkpoint]

PER_IMAGE_FILE is the ``per_image.jsonl`` of ``tools/test.py CONFIG CHECKPOINT
--analysis-dir ...`` (or of ``eval_scoremaps.py --plot_dir``; format:
tedloc_mm/evaluation/per_image_results.py). The tool first prints a short summary read
from it (images, CAM threshold, box accuracy and Top-1 Loc at that threshold, the
failure kinds): the run's own numbers (its MaxBoxAcc and Top-1 Loc at ``best_thr``).
From it the tool picks, among the images with GT boxes:

* ``best/`` and ``worst/``: the k images of highest and of lowest IoU (of MaxBoxAcc's
  box at the file's CAM threshold, best over the GT boxes);
* one folder per kind at that threshold: ``correct/`` (box and class right; highest
  IoU first), ``wrong_class/`` (box right, class wrong; highest IoU first),
  ``wrong_box/`` and ``both_wrong/`` (lowest IoU first): k images each.

The maps come from the saved maps of the run when they exist (``--scoremaps``, the
folder of ``tools/test.py --save-scoremaps``, found by itself when its
``scoremaps.json`` sits next to PER_IMAGE_FILE): no model runs, each image is drawn at
the evaluation size with the map the metric scored and the boxes of the file (the
image read from the file's ``img_path``, else ``--data-root``/image id). Otherwise
CONFIG and CHECKPOINT are needed: only the chosen images go through the model again
(the test dataset restricted to them with ``indices``, through the same Runner,
checkpoint checks and test pipeline as tools/test.py, its log kept to warnings). Each
image is drawn with the overlay of the visualization hook (heat map, GT boxes green,
the box at the file's CAM threshold red; in the strip beside the image: kind, IoU, GT
class, top classes, threshold). Each folder holds one PNG per image
(``<rank>_<image name>.png``) and ``DIR/<folder>.png`` shows them as one gallery;
``DIR/selection.json`` lists the chosen image ids per folder.
"""
import argparse
import json
import os
import os.path as osp
from typing import Dict, List

import numpy as np

import tedloc_mm  # noqa: F401  (the import hooks of tedloc_mm.compat, first)
from tedloc_mm.model_index import resolve_config
from tedloc_mm.tool_errors import (CfgOptionsAction, UserError, add_debug_argument,
                                   run_tool)


# the evaluation package (numba, OpenCV) and the drawing code are imported by the
# functions that need them, so that --help answers at once

#: the folders, in the order of the galleries


def groups_in_order() -> tuple:
    """The folders, in the order of the galleries: best, worst, then each failure kind."""
    from tedloc_mm.evaluation.wsol_analysis import FAILURE_KINDS
    return ('best', 'worst') + FAILURE_KINDS
GALLERY_COLUMNS = 4


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('inputs', nargs='+', metavar='[CONFIG CHECKPOINT] PER_IMAGE_FILE',
                   help='per_image.jsonl of tools/test.py --analysis-dir; before it the '
                   "run's config and checkpoint ('none' for configs/clip/) when the maps "
                   'are to be recomputed')
    p.add_argument('--scoremaps', default=None,
                   help='the saved maps of the run (tools/test.py --save-scoremaps); '
                   'default: the folder of PER_IMAGE_FILE when it holds scoremaps.json')
    p.add_argument('--data-root', default=None,
                   help='with --scoremaps: where the images are (<root>/<image id>) when '
                   'the file has no img_path')
    p.add_argument('--out-dir', required=True, help='where the folders are written')
    p.add_argument('--topk', type=int, default=8, help='images per folder')
    p.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction,
                   help='override config settings (the same as for tools/test.py)')
    p.add_argument('--trust-checkpoint', action='store_true',
                   help='read CHECKPOINT with full unpickling: only for a file you trust')
    add_debug_argument(p)
    args = p.parse_args(argv)
    if len(args.inputs) == 1:
        args.config = args.checkpoint = None
    elif len(args.inputs) == 3:
        args.config, args.checkpoint = args.inputs[:2]
    else:
        p.error('expected PER_IMAGE_FILE, or CONFIG CHECKPOINT PER_IMAGE_FILE')
    args.per_image = args.inputs[-1]
    return args


def select_images(lines: List[dict], k: int) -> Dict[str, List[dict]]:
    """{folder: lines}: the k best / worst by IoU and k per failure kind (module doc);
    ties keep the file's order."""
    if k < 1:
        raise ValueError(f'--topk must be >= 1, got {k}')
    boxed = [ln for ln in lines if ln['iou'] is not None]
    if not boxed:
        raise ValueError('no image of the file has GT boxes: nothing to rank by IoU')
    by_iou = sorted(boxed, key=lambda ln: ln['iou'])            # stable: file order on ties
    out = {'best': sorted(boxed, key=lambda ln: -ln['iou'])[:k], 'worst': by_iou[:k]}
    from tedloc_mm.evaluation.wsol_analysis import FAILURE_KINDS
    for kind in FAILURE_KINDS:
        of_kind = [ln for ln in boxed if ln['kind'] == kind]
        high_first = kind in ('correct', 'wrong_class')
        out[kind] = sorted(of_kind, key=lambda ln: -ln['iou'] if high_first
                           else ln['iou'])[:k]
    return out


def _class_name(names, label) -> str:
    if label is None:
        return '?'
    return names[label] if names and 0 <= label < len(names) else str(label)


def describe(line: dict, group: str, names, thr: float) -> List[str]:
    """The lines of the strip beside an overlay."""
    texts = [f'{group}' if group == line['kind'] else f'{group} ({line["kind"]})',
             f'IoU {line["iou"]:.2f} at thr {thr:.2f}',
             f'GT: {_class_name(names, line["label"])}']
    scores = line.get('top5_scores') or []
    for i, c in enumerate((line.get('top5') or [])[:3]):
        score = f': {scores[i]:.3f}' if i < len(scores) and scores[i] is not None else ''
        texts.append(f'{i + 1}. {_class_name(names, c)}{score}')
    texts.append(osp.basename(str(line['img_id'])))
    return texts


def gallery(visualizer, tiles: List[np.ndarray], title: str) -> np.ndarray:
    """Tiles (RGB, any widths, one height) on a grid under a title strip."""
    h = max(t.shape[0] for t in tiles)
    w = max(t.shape[1] for t in tiles)
    gap = 6
    cols = min(GALLERY_COLUMNS, len(tiles))
    rows = (len(tiles) + cols - 1) // cols
    grid = np.full((rows * (h + gap), cols * (w + gap) - gap, 3), 255, np.uint8)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, cols)
        grid[r * (h + gap):r * (h + gap) + tile.shape[0],
             c * (w + gap):c * (w + gap) + tile.shape[1]] = tile
    visualizer.set_image(np.full((32, grid.shape[1], 3), 255, np.uint8))
    visualizer.draw_texts(title, np.array([8, 7]), font_sizes=15, colors=[(0, 0, 0)],
                          vertical_alignments='top')
    return np.concatenate([visualizer.get_image(), grid], axis=0)


def summary_lines(header: dict, lines: List[dict]) -> List[str]:
    """The run's numbers at the file's CAM threshold, counted from its lines: the box
    accuracy (MaxBoxAcc when the threshold is the run's best) and Top-1 Loc (the share
    of ``correct``, the run's ``Top1Loc@best_thr``), in percent as the metric gives them."""
    boxed = [ln for ln in lines if ln['box_correct'] is not None]
    thr, source = float(header['cam_threshold']), header.get('threshold_source')
    which = "the run's best" if source == 'best' else source
    out = [f'{len(lines)} image(s), {len(boxed)} with GT boxes; CAM threshold {thr:g} '
           f'({which})']
    if boxed:
        hits = sum(ln['box_correct'] for ln in boxed)
        name = 'MaxBoxAcc' if source == 'best' else 'box accuracy'
        # the metric's arithmetic (count * 100.0 / n), so that the digits are the run's
        out.append(f'{name} (IoU {header["loc_iou"]:g}): {hits * 100.0 / len(boxed)} '
                   f'({hits}/{len(boxed)})')
    kinds = [ln['kind'] for ln in boxed if ln['kind'] is not None]
    if kinds and len(kinds) == len(boxed):
        correct = kinds.count('correct')
        out.append(f'Top-1 Loc at that threshold: {correct * 100.0 / len(kinds)} '
                   f'({correct}/{len(kinds)})')
        from tedloc_mm.evaluation.wsol_analysis import FAILURE_KINDS
        out.append('kinds: ' + ', '.join(f'{k} {kinds.count(k)}' for k in FAILURE_KINDS))
    cls = [ln['cls_correct'] for ln in lines if ln['cls_correct'] is not None]
    if cls:
        out.append(f'Top-1 Cls: {sum(cls) / len(cls) * 100} ({sum(cls)}/{len(cls)})')
    return out


def _edges(box) -> np.ndarray:
    """Inclusive pixel box(es) of the file -> float edges (N, 4)."""
    b = np.asarray(box, dtype=np.float64).reshape(-1, 4)
    return np.concatenate([b[:, :2], b[:, 2:] + 1], axis=1)


def from_saved_maps(maps_dir: str, chosen: List[dict], data_root) -> Dict[str, dict]:
    """{img_id: image (RGB at the evaluation size), map, GT and predicted box edges}
    from the saved maps and the file's boxes: no model runs."""
    import cv2

    from tedloc_mm.evaluation.scoremap_dir import scoremap_path
    from tedloc_mm.fileio.image_io import read_image
    kept = {}
    for line in chosen:
        img_id = line['img_id']
        path = scoremap_path(maps_dir, img_id)
        if not osp.isfile(path):
            raise FileNotFoundError(f'no saved map of image {img_id!r} in {maps_dir} '
                                    f'({path}); the maps of another run?')
        pred_map = np.load(path, allow_pickle=False)
        img_path = line.get('img_path') or (osp.join(data_root, img_id) if data_root
                                            else None)
        if img_path is None:
            raise UserError(f'the per-image file has no img_path for {img_id!r}: give '
                            '--data-root (the images are <data_root>/<image id>)')
        h, w = line['size']
        if tuple(pred_map.shape) != (h, w):
            raise UserError(f'{path}: map of {pred_map.shape}, the per-image file\'s boxes '
                            f'are at {h}x{w} (the maps of another run?)')
        bgr = cv2.resize(read_image(img_path), (w, h), interpolation=cv2.INTER_LINEAR)
        kept[img_id] = dict(image=np.ascontiguousarray(bgr[:, :, ::-1]), pred_map=pred_map,
                            gt_bboxes=None if not line['gt_boxes'] else _edges(line['gt_boxes']),
                            pred_box=None if line['pred_box'] is None else _edges(line['pred_box']))
    return kept


def rerun_model(args, wanted) -> tuple:
    """(kept, visualizer): the chosen images through the model again (module doc)."""
    import mmcv
    from mmengine.hooks import Hook
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner

    from tedloc_mm.engine.runner_config import build_runner_config
    from tedloc_mm.fileio.checkpoint import trusted_checkpoints
    from tedloc_mm.registry import DATASETS

    if args.config is None:
        raise UserError(f'no saved maps for {args.per_image} (--scoremaps, or scoremaps.json '
                        'next to it): give CONFIG CHECKPOINT PER_IMAGE_FILE to recompute '
                        'the maps of the chosen images')
    config = resolve_config(args.config)
    no_ckpt = args.checkpoint.lower() == 'none'
    if not no_ckpt and not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint not found: {args.checkpoint}')
    cfg = build_runner_config(config, osp.join(args.out_dir, 'work'), args.cfg_options,
                              'none')
    cfg.log_level = 'WARNING'   # no banner, no metrics of the few images run again
    # the dataset's indices of the chosen image ids (metadata only, no image is read)
    init_default_scope(cfg.get('default_scope', 'tedloc'))
    data_cfg = cfg.test_dataloader.dataset
    dataset = DATASETS.build(data_cfg)
    index = {dataset.get_data_info(i)['img_id']: i for i in range(len(dataset))}
    missing = sorted(wanted - set(index))
    if missing:
        raise UserError(f'{args.per_image}: {len(missing)} image id(s) are not in the '
                        f'config\'s test set, e.g. {missing[0]!r} (another config or '
                        '--cfg-options than the run\'s?)')
    data_cfg.indices = sorted(index[i] for i in wanted)
    cfg.test_dataloader.sampler = dict(type='DefaultSampler', shuffle=False)
    # the config's default_hooks check the checkpoint's weights (checkpoint_weights);
    # no overlays or curves of the re-run: the galleries are this tool's pictures
    cfg.custom_hooks = []
    for key in ('visualization', 'curves'):
        hook = (cfg.get('default_hooks') or {}).get(key)
        if hook is not None and 'enable' in hook:
            hook['enable'] = False
    cfg.load_from = None if no_ckpt else args.checkpoint
    cfg.resume = False

    kept = {}

    class KeepOutputs(Hook):
        """The input image and the prediction of each chosen image."""

        def after_test_iter(self, runner, batch_idx, data_batch=None, outputs=None):
            for img, sample in zip(data_batch['inputs'], outputs):
                bgr = np.ascontiguousarray(img.permute(1, 2, 0).cpu().numpy().astype(np.uint8))
                gt = sample.get('gt_bboxes')
                kept[sample.metainfo['img_id']] = dict(
                    image=mmcv.bgr2rgb(bgr),
                    pred_map=sample.pred_map.detach().float().cpu().numpy(),
                    gt_bboxes=None if gt is None else gt.detach().cpu().numpy())

    runner = Runner.from_cfg(cfg)
    runner.register_hook(KeepOutputs(), priority='LOWEST')
    with trusted_checkpoints([cfg.load_from] if args.trust_checkpoint else []):
        runner.test()
    return kept, runner.visualizer


def main(argv=None) -> dict:
    args = parse_args(argv)
    from tedloc_mm.evaluation.per_image_results import read_per_image_results
    try:
        header, lines = read_per_image_results(args.per_image)
        groups = select_images(lines, args.topk)
    except ValueError as err:       # not a per-image file, or nothing to rank
        raise UserError(str(err)) from err
    for line in summary_lines(header, lines):
        print(line)
    wanted = {ln['img_id'] for sel in groups.values() for ln in sel}
    chosen = {ln['img_id']: ln for sel in groups.values() for ln in sel}
    maps_dir = args.scoremaps
    beside = osp.dirname(osp.abspath(args.per_image))
    if maps_dir is None and osp.isfile(osp.join(beside, 'scoremaps.json')):
        maps_dir = beside

    import mmcv

    from tedloc_mm.visualization.wsol_overlay import draw_localization, predicted_box_edges
    thr = float(header['cam_threshold'])
    if maps_dir is not None:
        from mmengine.visualization import Visualizer
        kept = from_saved_maps(maps_dir, list(chosen.values()), args.data_root)
        visualizer = Visualizer(name=f'analyze_results_{id(kept)}')
        recomputed = 0
    else:
        kept, visualizer = rerun_model(args, wanted)
        recomputed = len(kept)
    names = header.get('classes')
    selection = {}
    for group in groups_in_order():
        folder = osp.join(args.out_dir, group)
        os.makedirs(folder, exist_ok=True)
        tiles = []
        for rank, line in enumerate(groups[group]):
            item = kept[line['img_id']]
            box = item['pred_box'] if 'pred_box' in item else \
                predicted_box_edges(item['pred_map'], thr)
            texts = describe(line, group, names, thr)
            if box is None:
                texts.append('no box: constant map')
            drawn = draw_localization(visualizer, item['image'], item['pred_map'],
                                      pred_boxes=box, gt_boxes=item['gt_bboxes'],
                                      texts=texts)
            name = osp.splitext(osp.basename(str(line['img_id'])))[0]
            mmcv.imwrite(mmcv.rgb2bgr(drawn), osp.join(folder, f'{rank:02d}_{name}.png'))
            tiles.append(drawn)
        selection[group] = [dict(img_id=ln['img_id'], iou=ln['iou'], kind=ln['kind'])
                            for ln in groups[group]]
        if tiles:
            title = (f'{group}: {len(tiles)} image(s), box at CAM threshold {thr:.2f} '
                     f'(red), GT green; from {osp.basename(args.per_image)}')
            mmcv.imwrite(mmcv.rgb2bgr(gallery(visualizer, tiles, title)),
                         osp.join(args.out_dir, f'{group}.png'))
    with open(osp.join(args.out_dir, 'selection.json'), 'w', encoding='utf-8') as f:
        json.dump(dict(per_image=args.per_image, cam_threshold=thr, topk=args.topk,
                       scoremaps=maps_dir, recomputed=recomputed, groups=selection),
                  f, indent=2)
    how = (f'maps read from {maps_dir}, no model run' if maps_dir is not None
           else f'{recomputed} image(s) recomputed')
    print(f'{how}; folders {", ".join(groups_in_order())} and galleries written to '
          f'{args.out_dir}')
    return dict(recomputed=recomputed, groups=selection, scoremaps=maps_dir,
                summary=summary_lines(header, lines))


if __name__ == '__main__':
    raise SystemExit(run_tool(main))
