"""A synthetic WSOL benchmark: objects whose class is decided by a small part.

Every object is a textured *body* (a perturbed ellipse, optionally with a tail and
wings) with a small *head* at one end of its long axis. Bodies are drawn from one
distribution for all classes (shape family, size, aspect, rotation, colour, texture);
only the head (shape x colour) tells the classes apart. The ground-truth box and mask
cover the whole object (body + head), so a classifier's CAM that fires on the head
finds the class evidence but misses the extent: the classic WSOL failure.
Backgrounds are smooth colour fields with pixel noise, clutter shapes (some in head
colours, but never head-like: thin bars) and optional part-less *decoy* bodies.

Output (the metadata format of Choe et al., CVPR 2020, ``wsolevaluation``; no header
lines, comma separated, paths relative to ``out_dir``)::

    images/<split>/<cc>_<class-slug>/<split>_<cc>_<nnnnn>.png
    masks/<split>/<cc>_<class-slug>/<stem>_obj<i>.png      (val/test; 0 / 255)
    masks/<split>/<cc>_<class-slug>/<stem>_part<i>.png     (val/test; 0 / 255)
    metadata/class_names.txt             one name per line, line index = label
    metadata/generator_config.json       the config and seed that made the set
    metadata/<split>/image_ids.txt       path
    metadata/<split>/class_labels.txt    path,label
    metadata/<split>/image_sizes.txt     path,w,h
    metadata/<split>/localization.txt    path,x0,y0,x1,y1   (one line per object)
    metadata/<split>/localization_masks.txt  path,mask_path,ignore_path (val/test)
    metadata/<split>/part_localization.txt   path,x0,y0,x1,y1   (head boxes)
    metadata/<split>/part_masks.txt          path,part_mask_path (val/test)

Box convention: inclusive pixel indices, as in wsolevaluation (whose IoU adds 1 to
widths): ``x0 = min x``, ``x1 = max x`` of the object's mask pixels. Masks are
rendered without anti-aliasing, so they are exact and ``ignore_path`` is empty unless
``ignore_border > 0`` asks for a band of that many pixels around each object to be
ignored by PxAP (written as ``<stem>_ignore.png``; wsolevaluation's loader removes
object pixels from it).

Determinism: image ``j`` of class ``c`` in a split is drawn from a NumPy Generator
seeded with ``(seed, split, c, j)``, so the same seed gives byte-identical files and
changing the number of images per class leaves the other images unchanged.
"""
import dataclasses
import json
import os
import os.path as osp
import shutil
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from tedloc_mm.fileio.wsol_writer import mask_to_box
from .glider_shapes import (body_polygons, fill_polygons, head_polygons, place_inside,
                            random_colour, random_texture)

SPLITS = ('train', 'val', 'test')
MASK_SPLITS = ('val', 'test')
#: head colours (RGB, fully saturated, so that they stand out of the muted bodies)
HEAD_COLOURS = (('red', (225, 30, 30)), ('yellow', (245, 225, 20)),
                ('cyan', (20, 215, 235)), ('magenta', (225, 40, 225)),
                ('orange', (250, 135, 10)), ('white', (250, 250, 250)))
HEAD_SHAPES = (('round', 'disc'), ('spike', 'triangle'), ('box', 'square'),
               ('cross', 'plus'), ('ring', 'ring'), ('star', 'star'))
MAX_CLASSES = len(HEAD_COLOURS) * len(HEAD_SHAPES)


@dataclasses.dataclass
class SyntheticWSOLConfig:
    """Options of the generator. Lengths are fractions of the image side unless said.

    Defaults (96 px, 8 classes, 120 / 20 / 40 images per class) are sized for the
    2-core CPU demo: 1440 images, a tiny ViT with patch 8 sees a 12 x 12 token grid,
    on which the head (about 8-15 px) covers one or two tokens and the body five to
    eight tokens along its long axis.
    """
    seed: int = 0
    num_classes: int = 8
    num_train: int = 120          # images per class
    num_val: int = 20
    num_test: int = 40
    image_size: int = 96          # square images, pixels
    body_length: Tuple[float, float] = (0.38, 0.68)   # long axis of the body
    body_aspect: Tuple[float, float] = (1.4, 2.6)     # long / short axis
    part_size: Tuple[float, float] = (0.18, 0.26)     # head diameter / body length
    max_part_box_ratio: float = 0.12  # head area / box area, enforced by resampling
    min_part_pixels: int = 20         # head area in pixels, enforced by resampling
    tail_prob: float = 0.5
    wings_prob: float = 0.5
    instances: Tuple[int, int] = (1, 1)     # objects per image (same class), min, max
    num_clutter: Tuple[int, int] = (2, 5)   # background clutter shapes, min, max
    clutter_head_colour_prob: float = 0.15  # clutter bar painted in a head colour
    decoy_prob: float = 0.4                 # probability of one part-less body
    noise_std: float = 4.0                  # pixel noise, grey levels
    ignore_border: int = 0                  # PxAP ignore band around objects, px
    image_ext: str = 'png'                  # 'png' (exact) or 'jpg'

    def validate(self) -> None:
        if not 1 <= self.num_classes <= MAX_CLASSES:
            raise ValueError(f'num_classes must be in [1, {MAX_CLASSES}] (head colours x '
                             f'head shapes), got {self.num_classes}')
        if self.image_size < 32:
            raise ValueError(f'image_size must be >= 32 px, got {self.image_size}')
        if min(self.num_train, self.num_val, self.num_test) < 0:
            raise ValueError('image counts per class must be >= 0')
        if not 1 <= self.instances[0] <= self.instances[1] <= 2:
            raise ValueError(f'instances must satisfy 1 <= min <= max <= 2, '
                             f'got {self.instances}')
        if self.image_ext not in ('png', 'jpg'):
            raise ValueError(f"image_ext must be 'png' or 'jpg', got {self.image_ext!r}")


def class_names(num_classes: int) -> List[str]:
    """Readable names, e.g. ``'red round-headed glider'``; index = label.

    Class ``k`` has head colour ``k % C`` and head shape ``(k + k // C) % S``: the
    first C classes differ in both, later classes share a colour with an earlier one
    and differ in shape only.
    """
    return [f'{HEAD_COLOURS[c][0]} {HEAD_SHAPES[h][0]}-headed glider'
            for c, h in map(_head_index, range(num_classes))]


def _head_index(label: int) -> Tuple[int, int]:
    """(colour index, shape index) of the head of class ``label``; unique per class."""
    return label % len(HEAD_COLOURS), (label + label // len(HEAD_COLOURS)) % len(HEAD_SHAPES)


def _head_of(label: int) -> Tuple[np.ndarray, str]:
    """(RGB colour float32 (3,), shape name) of the head of class ``label``."""
    c, h = _head_index(label)
    return np.array(HEAD_COLOURS[c][1], np.float32), HEAD_SHAPES[h][1]


# ----------------------------------------------------------------------------- sample
@dataclasses.dataclass
class SyntheticSample:
    """One rendered image. ``image`` (S, S, 3) uint8 RGB; masks (S, S) uint8 in {0, 1}."""
    image: np.ndarray
    object_masks: List[np.ndarray]
    part_masks: List[np.ndarray]

    @property
    def boxes(self) -> List[Tuple[int, int, int, int]]:
        """Tight inclusive boxes (x0, y0, x1, y1) of the object masks."""
        return [mask_to_box(m) for m in self.object_masks]

    @property
    def part_boxes(self) -> List[Tuple[int, int, int, int]]:
        return [mask_to_box(m) for m in self.part_masks]


def _draw_background(rng, cfg) -> np.ndarray:
    """Smooth blend of two muted colours plus clutter shapes; (S, S, 3) float RGB.

    Clutter: ellipses, boxes and polygons in body-like colours, and thin bars that may
    wear a head colour (never head-shaped), so that head colour alone is not the class.
    """
    size, hw = cfg.image_size, (cfg.image_size, cfg.image_size)
    c0 = random_colour(rng, (0.0, 0.45), (0.25, 0.85))
    c1 = random_colour(rng, (0.0, 0.45), (0.25, 0.85))
    blend = cv2.resize(rng.random((4, 4)).astype(np.float32), hw,
                       interpolation=cv2.INTER_CUBIC)[..., None].clip(0, 1)
    img = c0 * blend + c1 * (1 - blend)
    for _ in range(int(rng.integers(cfg.num_clutter[0], cfg.num_clutter[1] + 1))):
        centre, ext = rng.uniform(0, size, 2), rng.uniform(0.05, 0.22) * size
        kind = rng.integers(4)
        if kind == 3:    # thin bar
            ang = rng.uniform(0, np.pi)
            u, w = np.array([np.cos(ang), np.sin(ang)]), rng.uniform(0.8, 1.8)
            v = np.array([-u[1], u[0]])
            poly = centre + np.outer([1.8, -1.8, -1.8, 1.8], ext * u) + np.outer(
                [w, w, -w, -w], v)
            colour = (_head_of(int(rng.integers(cfg.num_classes)))[0]
                      if rng.random() < cfg.clutter_head_colour_prob
                      else random_colour(rng, (0.1, 0.6), (0.3, 0.85)))
        else:            # ellipse, box or random polygon
            n = (24, 4, int(rng.integers(3, 7)))[kind]
            t = (np.sort(rng.uniform(0, 2 * np.pi, n)) if kind == 2 else
                 np.linspace(0, 2 * np.pi, n, endpoint=False) + rng.uniform(0, np.pi))
            asp = rng.uniform(0.4, 1.0)
            poly = centre + np.stack([ext * np.cos(t), asp * ext * np.sin(t)], 1)
            colour = random_colour(rng, (0.1, 0.6), (0.3, 0.85))
        m = fill_polygons(hw, [poly]).astype(bool)
        img[m] = random_texture(rng, colour, size)[m]
    return img


def _sample_object(rng, cfg, label, n_obj, occupied, max_tries=50):
    """Masks (object, head) of one object placed inside the image and away from
    ``occupied``; geometry is redrawn until the head-size constraints hold."""
    size, hw = cfg.image_size, (cfg.image_size, cfg.image_size)
    for _ in range(max_tries):
        length = rng.uniform(*cfg.body_length) * size / (1.0 if n_obj == 1 else 1.4)
        angle = rng.uniform(0, 2 * np.pi)
        diameter = rng.uniform(*cfg.part_size) * length
        body, head_c, u = body_polygons(rng, np.zeros(2), length, angle, cfg.body_aspect,
                                        cfg.tail_prob, cfg.wings_prob)
        head = head_polygons(_head_of(label)[1], head_c, u, diameter)
        shift = place_inside(rng, body + head, size)
        if shift is None:
            continue
        obj = fill_polygons(hw, [p + shift for p in body + head])
        part = fill_polygons(hw, [p + shift for p in head])
        x0, y0, x1, y1 = mask_to_box(obj)
        ratio = part.sum() / ((x1 - x0 + 1) * (y1 - y0 + 1))
        if (ratio <= cfg.max_part_box_ratio and part.sum() >= cfg.min_part_pixels
                and not (occupied & obj.astype(bool)).any()):
            return obj, part
    raise RuntimeError(
        f'could not place an object of class {label} in {max_tries} tries: '
        f'part_size={cfg.part_size}, max_part_box_ratio={cfg.max_part_box_ratio}, '
        f'min_part_pixels={cfg.min_part_pixels} and image_size={size} disagree')


def render_sample(rng: np.random.Generator, label: int,
                  cfg: SyntheticWSOLConfig) -> SyntheticSample:
    """Render one image of class ``label`` from the random stream ``rng``."""
    size, hw = cfg.image_size, (cfg.image_size, cfg.image_size)
    img = _draw_background(rng, cfg)
    occupied = np.zeros(hw, bool)   # objects grown by 2 px: instances never touch
    object_masks, part_masks = [], []
    n_obj = int(rng.integers(cfg.instances[0], cfg.instances[1] + 1))
    for _ in range(n_obj):
        obj, part = _sample_object(rng, cfg, label, n_obj, occupied)
        object_masks.append(obj)
        part_masks.append(part)
        occupied |= cv2.dilate(obj, np.ones((5, 5), np.uint8)).astype(bool)

    # decoy: a body from the same distribution without a head, away from the objects
    if rng.random() < cfg.decoy_prob:
        length = rng.uniform(*cfg.body_length) * size * rng.uniform(0.5, 0.85)
        polys = body_polygons(rng, np.zeros(2), length, rng.uniform(0, 2 * np.pi),
                              cfg.body_aspect, cfg.tail_prob, cfg.wings_prob)[0]
        shift = place_inside(rng, polys, size)
        if shift is not None:
            m = fill_polygons(hw, [p + shift for p in polys]).astype(bool)
            if not (m & occupied).any():
                colour = random_colour(rng, (0.15, 0.55), (0.35, 0.8))
                img[m] = random_texture(rng, colour, size)[m]

    head_colour, head_shape = _head_of(label)
    for obj, part in zip(object_masks, part_masks):
        pm = part.astype(bool)
        body = obj.astype(bool) & ~pm
        img[body] = random_texture(rng, random_colour(rng, (0.15, 0.55), (0.35, 0.8)), size)[body]
        paint = np.clip(head_colour * rng.uniform(0.85, 1.05) + rng.normal(0, 6, 3), 0, 255)
        img[pm] = paint
        if head_shape == 'ring':   # a dark eye in the middle of the ring head
            ys, xs = np.nonzero(pm)
            r2 = 0.35 ** 2 * pm.sum() / np.pi
            yy, xx = np.mgrid[0:size, 0:size]
            img[((xx - xs.mean()) ** 2 + (yy - ys.mean()) ** 2 <= r2) & pm] = paint * 0.25

    img = img + rng.normal(0, cfg.noise_std, img.shape)
    return SyntheticSample(np.clip(np.round(img), 0, 255).astype(np.uint8),
                           object_masks, part_masks)


# ----------------------------------------------------------------------------- writing
def _write_png(path: str, array: np.ndarray) -> None:
    os.makedirs(osp.dirname(path), exist_ok=True)
    if not cv2.imwrite(path, array):
        raise OSError(f'could not write {path}')


def _write_lines(path: str, lines: Sequence[str]) -> None:
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w', newline='\n') as f:
        f.writelines(line + '\n' for line in lines)


def _config_record(cfg: SyntheticWSOLConfig) -> str:
    # bump format_version whenever the drawing changes, so that ``reuse`` never keeps
    # a set made by older code
    record = dict(generator='tedloc_mm.embedded_benchmarks.gliders', format_version=1,
                  **dataclasses.asdict(cfg))
    return json.dumps(record, indent=2, sort_keys=True) + '\n'


def generate_synthetic_wsol(out_dir: str, cfg: Optional[SyntheticWSOLConfig] = None,
                            overwrite: bool = False, reuse: bool = False,
                            logger=None, **overrides) -> Dict[str, int]:
    """Write the benchmark under ``out_dir`` (layout in the module docstring).

    Args:
        out_dir: root folder; metadata paths are relative to it.
        cfg: the options; ``overrides`` replace single fields (``num_classes=4``).
        overwrite: delete ``images/``, ``masks/``, ``metadata/`` of an existing set.
        reuse: if ``metadata/generator_config.json`` (written last, so it marks a
            complete set) already records exactly this config, write nothing and
            return the existing counts; otherwise fail, or with ``overwrite``
            replace the set.
        logger: optional callable taking a progress message (e.g. ``print``).

    Returns:
        dict with the number of images per split and ``'reused'`` (0 or 1).
    """
    cfg = dataclasses.replace(cfg or SyntheticWSOLConfig(), **overrides)
    cfg.validate()
    record = _config_record(cfg)
    counts = dict(train=cfg.num_train, val=cfg.num_val, test=cfg.num_test)
    totals = {s: counts[s] * cfg.num_classes for s in SPLITS}
    config_file = osp.join(out_dir, 'metadata', 'generator_config.json')
    if osp.isfile(config_file):
        with open(config_file) as f:
            same = f.read() == record
        if reuse and same:
            return dict(totals, reused=1)
        if not overwrite:
            raise FileExistsError(
                f'{out_dir} already holds a synthetic benchmark '
                f'({"same" if same else "different"} config); pass overwrite=True '
                f'(--overwrite) to replace it or reuse=True (--reuse) to keep it')
    for sub in ('images', 'masks', 'metadata'):
        if osp.isdir(osp.join(out_dir, sub)):
            if not overwrite:
                raise FileExistsError(f'{osp.join(out_dir, sub)} exists; pass overwrite=True')
            shutil.rmtree(osp.join(out_dir, sub))

    names = class_names(cfg.num_classes)
    _write_lines(osp.join(out_dir, 'metadata', 'class_names.txt'), names)
    ext = '.png' if cfg.image_ext == 'png' else '.jpg'
    kernel = np.ones((2 * cfg.ignore_border + 1,) * 2, np.uint8)
    for split_code, split in enumerate(SPLITS):
        files = {k: [] for k in ('image_ids', 'class_labels', 'image_sizes', 'localization',
                                 'localization_masks', 'part_localization', 'part_masks')}
        for label, name in enumerate(names):
            folder = f'{label:02d}_' + name.replace(' ', '_').replace('-', '_')
            for j in range(counts[split]):
                rng = np.random.default_rng([cfg.seed, split_code, label, j])
                sample = render_sample(rng, label, cfg)
                stem = f'{split}_{label:02d}_{j:05d}'
                img_id = f'images/{split}/{folder}/{stem}{ext}'
                _write_png(osp.join(out_dir, img_id), sample.image[..., ::-1])
                files['image_ids'].append(img_id)
                files['class_labels'].append(f'{img_id},{label}')
                files['image_sizes'].append(f'{img_id},{cfg.image_size},{cfg.image_size}')
                files['localization'] += [f'{img_id},' + ','.join(map(str, b))
                                          for b in sample.boxes]
                files['part_localization'] += [f'{img_id},' + ','.join(map(str, b))
                                               for b in sample.part_boxes]
                if split not in MASK_SPLITS:
                    continue
                mask_dir = f'masks/{split}/{folder}/{stem}'
                ignore_id = ''
                if cfg.ignore_border > 0:
                    union = np.any(sample.object_masks, axis=0).astype(np.uint8)
                    band = cv2.dilate(union, kernel) & (1 - union)
                    ignore_id = f'{mask_dir}_ignore.png'
                    _write_png(osp.join(out_dir, ignore_id), band * 255)
                for i, (obj, part) in enumerate(zip(sample.object_masks, sample.part_masks)):
                    _write_png(osp.join(out_dir, f'{mask_dir}_obj{i}.png'), obj * 255)
                    _write_png(osp.join(out_dir, f'{mask_dir}_part{i}.png'), part * 255)
                    # wsolevaluation: the ignore mask is named on an image's first line only
                    files['localization_masks'].append(
                        f'{img_id},{mask_dir}_obj{i}.png,{ignore_id if i == 0 else ""}')
                    files['part_masks'].append(f'{img_id},{mask_dir}_part{i}.png')
        for key, lines in files.items():
            if split in MASK_SPLITS or key not in ('localization_masks', 'part_masks'):
                _write_lines(osp.join(out_dir, 'metadata', split, f'{key}.txt'), lines)
        if logger is not None:
            logger(f'{split}: {totals[split]} images written')
    # the config goes last: its presence marks a complete set (see ``reuse``)
    with open(config_file, 'w', newline='\n') as f:
        f.write(record)
    return dict(totals, reused=0)
