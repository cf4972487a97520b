"""Look at the pseudo-labels the training pipeline feeds the model, before a long run.

    python tools/analysis_tools/browse_pseudo_labels.py CONFIG --output-dir DIR
        [-n 8] [--seed 0] [--panel-size 288] [--show] [--cfg-options k=v ...]

For each of the first N images of ``train_dataloader.dataset`` the config's own train
pipeline runs once (loading, ``LoadCAM``, the geometric augmentation, then
``PseudoLabelSampler``; the packing step is left out) and one picture
``DIR/<index>_<image name>.png`` shows, side by side:

1. the augmented image as the model gets it (before mean / std);
2. its CAM (the ``cam`` the sampler read, moved with the image), JET heat map
   blended with the image;
3. the Otsu region of the sampler on the decoder grid (kept bright, its outside
   darkened, outlined in yellow);
4. the FG (red) and BG (blue) grid cells sampled in that call, on a darkened image.

Titles sit in a strip above the panels; a header strip names the image, its class
and the grid. The pictures follow MMPretrain's ``tools/visualization/browse_dataset.py``
(config path, ``--output-dir``, ``-n``, ``--cfg-options``, ``--show``). Random draws
(flip, sampled cells) are seeded by ``--seed`` as MMEngine seeds training.
"""
import argparse
import os
import os.path as osp
import re
from typing import Dict, List, Tuple

import cv2
import numpy as np

import tedloc_mm  # noqa: F401,I100  (import hooks of tedloc_mm.compat, before MMCV)
import mmcv  # noqa: I100
from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope
from mmengine.runner import set_random_seed

from tedloc_mm.registry import DATASETS
from tedloc_mm.structures import PSEUDO_BG, PSEUDO_FG

SAMPLER = 'PseudoLabelSampler'
PACKERS = ('PackWSOLInputs', 'PackInputs')
FG_COLOR = (230, 30, 30)      # RGB, the sampled foreground cells
BG_COLOR = (40, 120, 255)     # RGB, the sampled background cells
REGION_COLOR = (255, 220, 0)  # RGB, the outline of the Otsu region
#: brightness of the darkened parts of panels 3 and 4
DIM = 0.35
TITLE_H = 38   # px of the title strip above each panel (two lines)
HEADER_H = 40  # px of the header strip above everything (two lines)
GAP = 6        # px between panels


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Browse the pseudo-labels of the '
                                     'training pipeline (image, CAM, Otsu region, '
                                     'sampled FG / BG cells)')
    parser.add_argument('config', help='TeD-Loc config file')
    parser.add_argument('--output-dir', '-o', default=None,
                        help='where the pictures go (required unless --show)')
    parser.add_argument('--num', '-n', type=int, default=8, help='number of images')
    parser.add_argument('--seed', type=int, default=0, help='seed of the random draws')
    parser.add_argument('--panel-size', type=int, default=288,
                        help='panels are the input scaled by the largest integer '
                             'factor that fits this many pixels (nearest neighbour)')
    parser.add_argument('--show', action='store_true', help='show each picture')
    parser.add_argument('--show-interval', type=float, default=0,
                        help='seconds per picture with --show (0: wait for a key)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value')
    args = parser.parse_args(argv)
    if args.output_dir is None and not args.show:
        parser.error('give --output-dir or --show')
    if args.num < 1:
        parser.error(f'--num must be >= 1, got {args.num}')
    return args


def _bare_type(step) -> str:
    t = step['type']
    return t.split('.')[-1] if isinstance(t, str) else t.__name__


def build_train_dataset(cfg: Config):
    """The train dataset of ``cfg`` whose sampler also keeps the Otsu region."""
    try:
        ds_cfg = cfg.train_dataloader.dataset
    except AttributeError:
        raise KeyError('the config has no train_dataloader.dataset') from None
    steps = ds_cfg.get('pipeline', [])
    samplers = [s for s in steps if _bare_type(s) == SAMPLER]
    if not samplers:
        raise ValueError(f'the train pipeline has no {SAMPLER}: '
                         f'{[_bare_type(s) for s in steps]}')
    for s in samplers:
        s['keep_fg_region'] = True
    return DATASETS.build(ds_cfg)


def run_pipeline(dataset, index: int) -> dict:
    """The train pipeline's result for one image, just before packing (one call:
    one augmentation, one sampler draw)."""
    results = dataset.get_data_info(index)
    for transform in dataset.pipeline.transforms:
        if type(transform).__name__ in PACKERS:
            break
        results = transform(results)
        if results is None:
            raise RuntimeError(f'{type(transform).__name__} dropped image {index}')
    return results


def _cells_to_pixels(grid: np.ndarray, out_hw: Tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour upsampling of a (gh, gw) grid to (H, W) panel pixels: cell
    (i, j) covers rows [i*H/gh, (i+1)*H/gh) and columns [j*W/gw, (j+1)*W/gw)."""
    gh, gw = grid.shape
    rows = (np.arange(out_hw[0]) * gh) // out_hw[0]
    cols = (np.arange(out_hw[1]) * gw) // out_hw[1]
    return grid[rows[:, None], cols[None, :]]


def _strip(width: int, height: int, lines: List[str]) -> np.ndarray:
    strip = np.full((height, width, 3), 255, np.uint8)
    for k, line in enumerate(lines):
        cv2.putText(strip, line, (3, 15 + 17 * k), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                    (0, 0, 0), 1, cv2.LINE_AA)
    return strip


def render(results: dict, panel_size: int = 288, class_names=None
           ) -> Tuple[np.ndarray, Dict]:
    """The picture of one pipeline result.

    Returns:
        (canvas, layout): canvas RGB uint8; layout has ``scale`` (display pixels per
        input pixel), ``panels`` (name -> (x0, y0) of the panel's top-left pixel in the
        canvas; names ``image``, ``cam``, ``region``, ``samples``) and ``panel_hw``.
    """
    img = mmcv.bgr2rgb(results['img'])
    h, w = img.shape[:2]
    scale = max(1, panel_size // max(h, w))
    big = cv2.resize(img, (w * scale, h * scale), interpolation=cv2.INTER_NEAREST)
    ph, pw = big.shape[:2]
    labels = results['pseudo_label_map']
    region = results['pseudo_fg_region']
    gh, gw = labels.shape

    cam = np.clip(np.asarray(results['cam'], np.float32), 0, 1)
    cam = cv2.resize(cam, (pw, ph), interpolation=cv2.INTER_NEAREST)
    heat = cv2.applyColorMap((cam * 255).astype(np.uint8), cv2.COLORMAP_JET)[..., ::-1]
    cam_panel = (0.5 * big + 0.5 * heat).round().astype(np.uint8)

    dim = (big * DIM).round().astype(np.uint8)
    in_region = _cells_to_pixels(region, (ph, pw))
    region_panel = np.where(in_region[..., None], big, dim)
    contours = cv2.findContours(in_region.astype(np.uint8), cv2.RETR_EXTERNAL,
                                cv2.CHAIN_APPROX_NONE)[0]
    cv2.drawContours(region_panel, contours, -1, REGION_COLOR, 1)

    cell = _cells_to_pixels(labels, (ph, pw))
    samples_panel = dim.copy()
    samples_panel[cell == PSEUDO_FG] = FG_COLOR
    samples_panel[cell == PSEUDO_BG] = BG_COLOR

    n_fg, n_bg = int((labels == PSEUDO_FG).sum()), int((labels == PSEUDO_BG).sum())
    panels = [
        ('image', big, ['augmented image', f'{h}x{w} input']),
        ('cam', cam_panel, ['CAM (LoadCAM, moved', 'with the image)']),
        ('region', region_panel, ['Otsu region (yellow)', f'{int(region.sum())} of '
                                  f'{gh}x{gw} cells']),
        ('samples', samples_panel, [f'sampled: {n_fg} FG (red)', f'{n_bg} BG (blue)']),
    ]
    width = len(panels) * pw + (len(panels) - 1) * GAP
    canvas = np.full((HEADER_H + TITLE_H + ph, width, 3), 255, np.uint8)
    label = results.get('gt_label')
    label = int(np.asarray(label).reshape(-1)[0]) if label is not None else None
    name = (class_names[label] if class_names and label is not None
            and label < len(class_names) else label)
    header = [str(results.get('img_id', '?')), f'class {name}']
    if results.get('flip'):
        header[1] += f', flipped {results.get("flip_direction")}'
    canvas[:HEADER_H] = _strip(width, HEADER_H, header)
    layout = dict(scale=scale, panel_hw=(ph, pw), panels={})
    for k, (key, panel, title) in enumerate(panels):
        x0 = k * (pw + GAP)
        canvas[HEADER_H:HEADER_H + TITLE_H, x0:x0 + pw] = _strip(pw, TITLE_H, title)
        canvas[HEADER_H + TITLE_H:, x0:x0 + pw] = panel
        layout['panels'][key] = (x0, HEADER_H + TITLE_H)
    return canvas, layout


def out_name(index: int, img_id: str) -> str:
    stem = osp.splitext(str(img_id))[0]
    return f'{index:04d}_{re.sub(r"[^A-Za-z0-9._-]+", "_", stem)}.png'


def main(argv=None):
    """Write (or show) the pictures; returns a list of dicts (``index``, ``img_id``,
    ``file``, ``results``: the pipeline's output drawn, ``layout``)."""
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'tedloc'))
    dataset = build_train_dataset(cfg)
    names = (dataset.metainfo or {}).get('classes')
    set_random_seed(args.seed)
    if args.output_dir:
        os.makedirs(args.output_dir, exist_ok=True)
    visualizer = None
    records = []
    for index in range(min(args.num, len(dataset))):
        results = run_pipeline(dataset, index)
        canvas, layout = render(results, args.panel_size, names)
        out_file = None
        if args.output_dir:
            out_file = osp.join(args.output_dir, out_name(index, results.get('img_id')))
            mmcv.imwrite(mmcv.rgb2bgr(canvas), out_file)
        if args.show:
            if visualizer is None:
                from mmengine.visualization import Visualizer
                visualizer = Visualizer.get_instance('tedloc_browse_pseudo_labels')
            visualizer.show(canvas, win_name=str(results.get('img_id')),
                            wait_time=args.show_interval)
        records.append(dict(index=index, img_id=results.get('img_id'), file=out_file,
                            results=results, layout=layout))
    print(f'{len(records)} picture(s)' + (f' in {args.output_dir}' if args.output_dir
                                          else ''))
    return records


if __name__ == '__main__':
    main()
