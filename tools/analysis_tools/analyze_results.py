"""Success and failure images of a WSOL test run, in MMPretrain's analyze_results style.

    python tools/analysis_tools/analyze_results.py CONFIG CHECKPOINT PER_IMAGE_FILE \\
        --out-dir DIR [--topk 8] [--cfg-options k=v ...] [--trust-checkpoint]

PER_IMAGE_FILE is the ``per_image.jsonl`` of ``tools/test.py CONFIG CHECKPOINT
--analysis-dir ...`` (format: tedloc_mm/evaluation/per_image_results.py). From it the
tool picks, among the images with GT boxes:

* ``best/`` and ``worst/``: the k images of highest and of lowest IoU (of MaxBoxAcc's
  box at the file's CAM threshold, best over the GT boxes);
* one folder per kind at that threshold: ``correct/`` (box and class right; highest
  IoU first), ``wrong_class/`` (box right, class wrong; highest IoU first),
  ``wrong_box/`` and ``both_wrong/`` (lowest IoU first): k images each.

Only those images go through the model again (the test dataset restricted to them with
``indices``, through the same Runner, checkpoint checks and test pipeline as
tools/test.py), and each is drawn with the overlay of the visualization hook (heat
map, GT boxes green, the box at the file's CAM threshold red; in the strip beside the
image: kind, IoU, GT class, top classes, threshold). Each folder holds one PNG per
image (``<rank>_<image name>.png``) and ``DIR/<folder>.png`` shows them as one
gallery; ``DIR/selection.json`` lists the chosen image ids per folder.
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

from tedloc_mm.evaluation.per_image_results import read_per_image_results
from tedloc_mm.evaluation.wsol_analysis import FAILURE_KINDS

#: the folders, in the order of the galleries
GROUPS = ('best', 'worst') + FAILURE_KINDS
GALLERY_COLUMNS = 4


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('config', help='the test config of the run')
    p.add_argument('checkpoint', help="its checkpoint, or 'none' (configs/clip/)")
    p.add_argument('per_image', help='per_image.jsonl of tools/test.py --analysis-dir')
    p.add_argument('--out-dir', required=True, help='where the folders are written')
    p.add_argument('--topk', type=int, default=8, help='images per folder')
    p.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction,
                   help='override config settings (the same as for tools/test.py)')
    p.add_argument('--trust-checkpoint', action='store_true',
                   help='read CHECKPOINT with full unpickling: only for a file you trust')
    add_debug_argument(p)
    return p.parse_args(argv)


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


def main(argv=None) -> dict:
    args = parse_args(argv)
    header, lines = read_per_image_results(args.per_image)
    groups = select_images(lines, args.topk)
    wanted = {ln['img_id'] for sel in groups.values() for ln in sel}

    import mmcv
    from mmengine.hooks import Hook
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner

    from tedloc_mm.engine.runner_config import build_runner_config
    from tedloc_mm.fileio.checkpoint import trusted_checkpoints
    from tedloc_mm.registry import DATASETS
    from tedloc_mm.visualization.wsol_overlay import draw_localization, predicted_box_edges

    no_ckpt = args.checkpoint.lower() == 'none'
    if not no_ckpt and not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint not found: {args.checkpoint}')
    cfg = build_runner_config(args.config, osp.join(args.out_dir, 'work'), args.cfg_options,
                              'none')
    # the dataset's indices of the chosen image ids (metadata only, no image is read)
    init_default_scope(cfg.get('default_scope', 'tedloc'))
    data_cfg = cfg.test_dataloader.dataset
    dataset = DATASETS.build(data_cfg)
    index = {dataset.get_data_info(i)['img_id']: i for i in range(len(dataset))}
    missing = sorted(wanted - set(index))
    if missing:
        raise ValueError(f'{args.per_image}: {len(missing)} image id(s) are not in the '
                         f'config\'s test set, e.g. {missing[0]!r} (another config or '
                         '--cfg-options than the run\'s?)')
    data_cfg.indices = sorted(index[i] for i in wanted)
    cfg.test_dataloader.sampler = dict(type='DefaultSampler', shuffle=False)
    # only the checkpoint check of tools/test.py; no other overlays
    cfg.custom_hooks = [] if no_ckpt else [
        dict(type='tedloc.CheckpointWeightsHook', filename=args.checkpoint)]
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
    thr = float(header['cam_threshold'])
    names = header.get('classes')
    visualizer = runner.visualizer
    selection = {}
    for group in GROUPS:
        folder = osp.join(args.out_dir, group)
        os.makedirs(folder, exist_ok=True)
        tiles = []
        for rank, line in enumerate(groups[group]):
            item = kept[line['img_id']]
            box = predicted_box_edges(item['pred_map'], thr)
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
                       recomputed=len(kept), groups=selection), f, indent=2)
    print(f'{len(kept)} image(s) recomputed; folders {", ".join(GROUPS)} and galleries '
          f'written to {args.out_dir}')
    return dict(recomputed=len(kept), groups=selection)


if __name__ == '__main__':
    raise SystemExit(run_tool(main))
