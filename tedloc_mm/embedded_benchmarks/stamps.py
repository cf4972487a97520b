"""A semi-real WSOL benchmark: photographic cut-outs pasted on photographs.

Objects are the photographic stamps of Tux Paint (Debian ``tuxpaint-stamps-default``:
real animals, fruit, flowers and vehicles cut out with an alpha channel); the class of an
image is the stamp's category (``animals/birds`` -> ``bird``). Backgrounds are random
crops of nature photographs shipped as desktop wallpapers (Debian ``mate-backgrounds``,
``plasma-workspace-wallpapers``). Each image holds one object at a random scale,
position and horizontal flip; its mask is exact (stamp alpha > ``alpha_threshold``
after resizing) and its box is the mask's tight inclusive box.

**Train, val and test use disjoint stamps** (per class, by ``stamp_split``): a test
object was never seen in training nor in model selection. A stamp and its mirrored copy
(``x.png``, ``x_mirror.png``) count as one. Stamps drawn as cartoons (subfolders
``cartoon``, ``toys``) are left out; the default classes are the categories with the
most photographs (PNG count with alpha: bird 35, mammal 64, fish 11, fruit 26,
flower 24, vehicle 19 after the exclusions).

Output (wsolevaluation metadata format, see :mod:`tedloc_mm.fileio.wsol_writer`)::

    images/<split>/<cc>_<class>/<split>_<cc>_<nnnnn>.jpg
    masks/<split>/<cc>_<class>/<stem>_obj0.png       (val/test)
    metadata/class_names.txt                          one name per line, index = label
    metadata/<split>/{image_ids,class_labels,image_sizes,localization}.txt
    metadata/<split>/localization_masks.txt           (val/test)
    metadata/<split>/stamps.txt                       path,stamp file (relative to the stamp root)
    metadata/generator_config.json                    config, stamps per split, backgrounds

Determinism: image ``j`` of class ``c`` is drawn from a NumPy Generator seeded with
``(seed, split, c, j)`` and uses stamp ``j mod n`` of its split's stamps of class ``c``,
so the same seed and source files give byte-identical output (with the same OpenCV
build: JPEG encoding and resizing are OpenCV's).
"""
import dataclasses
import json
import os
import os.path as osp
import re
import shutil
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from tedloc_mm.fileio.wsol_writer import WSOLSplitWriter, write_lines

SPLITS = ('train', 'val', 'test')
MASK_SPLITS = ('val', 'test')
STAMP_PACKAGE = 'tuxpaint-stamps-default'
STAMP_DIR = 'usr/share/tuxpaint/stamps'
#: class name -> stamp folders (recursive) relative to the stamp root
STAMP_CLASSES = {
    'bird': ('animals/birds',), 'mammal': ('animals/mammals',), 'fish': ('animals/fish',),
    'insect': ('animals/insects',), 'fruit': ('food/fruit',),
    'vegetable': ('food/vegetables',), 'flower': ('plants/flowers',),
    'vehicle': ('vehicles', 'military/vehicles'),
}
DEFAULT_CLASSES = ('bird', 'mammal', 'fish', 'fruit', 'flower', 'vehicle')
#: drawings, not photographs
EXCLUDED_SUBFOLDERS = ('cartoon', 'toys')
#: (package, file) of photographs without objects of the stamp classes (no flowers,
#: insects, boats or kites): meadows, water, forest, leaves, sky, sand, wood
BACKGROUNDS = tuple(
    [('mate-backgrounds', f'usr/share/backgrounds/mate/nature/{n}.jpg') for n in
     ('Aqua', 'Blinds', 'Dune', 'GreenMeadow', 'RainDrops', 'Storm', 'TwoWings', 'Wood')] +
    # the other sizes of a Plasma wallpaper are symbolic links to this one
    [('plasma-workspace-wallpapers', f'usr/share/wallpapers/{n}/contents/images/2560x1600.jpg')
     for n in ('BytheWater', 'ColdRipple', 'DarkestHour', 'FallenLeaf', 'Grey', 'OneStandsOut',
               'Path', 'summer_1am', 'ColorfulCups')])
BACKGROUND_PACKAGES = tuple(sorted({p for p, _ in BACKGROUNDS}))


@dataclasses.dataclass
class StampBenchmarkConfig:
    """Options of the generator.

    ``classes``: names of :data:`STAMP_CLASSES`, or stamp folders relative to the stamp
    root (the class is then named after the folder). ``backgrounds``: image paths
    relative to the background root; None = :data:`BACKGROUNDS` (each looked up as
    ``<root>/<package>/<file>`` or ``<root>/<file>``). Sizes are fractions of the image
    side unless said; image counts are per class.
    """
    seed: int = 0
    classes: Tuple[str, ...] = DEFAULT_CLASSES
    num_train: int = 100
    num_val: int = 15
    num_test: int = 30
    image_size: int = 224                               # square images, pixels
    object_size: Tuple[float, float] = (0.35, 0.8)      # longer side of the object box
    flip_prob: float = 0.5
    alpha_threshold: int = 128                          # mask = alpha > this (0-255)
    stamp_split: Tuple[float, float, float] = (0.6, 0.15, 0.25)  # of each class's stamps
    background_crop: Tuple[float, float] = (0.4, 1.0)   # crop side / shorter photo side
    min_stamp_side: int = 32                            # smaller cut-outs are skipped
    backgrounds: Optional[Tuple[str, ...]] = None
    image_ext: str = 'jpg'                              # 'jpg' (quality 95) or 'png'

    def validate(self) -> None:
        if len(set(self.classes)) != len(self.classes) or len(self.classes) < 2:
            raise ValueError(f'classes must be at least two distinct names, got {self.classes}')
        if self.image_size < 64:
            raise ValueError(f'image_size must be >= 64 px, got {self.image_size}')
        if not 0 < self.object_size[0] <= self.object_size[1] <= 1:
            raise ValueError(f'object_size must satisfy 0 < min <= max <= 1, got '
                             f'{self.object_size}')
        if not 0 < self.background_crop[0] <= self.background_crop[1] <= 1:
            raise ValueError(f'background_crop must satisfy 0 < min <= max <= 1, got '
                             f'{self.background_crop}')
        if len(self.stamp_split) != 3 or min(self.stamp_split) <= 0:
            raise ValueError(f'stamp_split must be three positive fractions, got '
                             f'{self.stamp_split}')
        if min(self.num_train, self.num_val, self.num_test) < 0:
            raise ValueError('image counts per class must be >= 0')
        if self.image_ext not in ('png', 'jpg'):
            raise ValueError(f"image_ext must be 'png' or 'jpg', got {self.image_ext!r}")

    def class_names(self) -> List[str]:
        return [c if c in STAMP_CLASSES else osp.basename(c.rstrip('/')) for c in self.classes]


# ----------------------------------------------------------------------------- stamps
@dataclasses.dataclass
class Stamp:
    """A cut-out cropped to its alpha box: ``rgb`` (h, w, 3) float32, ``alpha`` (h, w)
    float32 in [0, 1]; ``path`` relative to the stamp root."""
    path: str
    rgb: np.ndarray
    alpha: np.ndarray


def _group_key(path: str) -> str:
    """``birds/duck_mirror.png`` and ``birds/duck.png`` -> ``birds/duck``."""
    stem = osp.splitext(path)[0]
    return re.sub(r'[_-]?mirror$', '', stem)


def list_stamps(stamp_root: str, cls: str) -> List[str]:
    """Sorted PNG paths (relative to ``stamp_root``) of class ``cls``, cartoons excluded."""
    out = []
    for folder in STAMP_CLASSES.get(cls, (cls,)):
        top = osp.join(stamp_root, folder)
        if not osp.isdir(top):
            raise FileNotFoundError(f'stamp folder {top} (class {cls!r}) does not exist')
        for d, subdirs, files in os.walk(top):
            subdirs[:] = sorted(s for s in subdirs if s not in EXCLUDED_SUBFOLDERS)
            out += [osp.relpath(osp.join(d, f), stamp_root) for f in files
                    if f.lower().endswith('.png')]
    return sorted(out)


def load_stamp(stamp_root: str, rel: str, alpha_threshold: int) -> Optional[Stamp]:
    """Read an RGBA PNG and crop it to the box of alpha > threshold; None if it has
    no alpha channel or nothing above the threshold."""
    img = cv2.imread(osp.join(stamp_root, rel), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise OSError(f'cannot read stamp {osp.join(stamp_root, rel)}')
    if img.dtype == np.uint16:
        img = (img // 257).astype(np.uint8)
    if img.ndim != 3 or img.shape[2] != 4:
        return None
    alpha = img[..., 3]
    ys, xs = np.nonzero(alpha > alpha_threshold)
    if xs.size == 0:
        return None
    crop = img[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    return Stamp(rel, crop[..., 2::-1].astype(np.float32), crop[..., 3].astype(np.float32) / 255)


def split_stamps(stamps: Sequence[str], fractions: Sequence[float], seed: int,
                 label: int, cls: str) -> Dict[str, List[str]]:
    """Disjoint train / val / test stamp lists of one class (mirrored copies together)."""
    groups: Dict[str, List[str]] = {}
    for s in stamps:
        groups.setdefault(_group_key(s), []).append(s)
    keys = sorted(groups)
    n = len(keys)
    if n < 3:
        raise ValueError(f'class {cls!r} has {n} usable stamp(s); disjoint train / val / '
                         'test need at least 3')
    total = sum(fractions)
    n_val = max(1, int(round(n * fractions[1] / total)))
    n_test = max(1, int(round(n * fractions[2] / total)))
    while n_val + n_test > n - 1:  # keep at least one training stamp
        if n_val >= n_test:
            n_val -= 1
        else:
            n_test -= 1
    order = np.random.default_rng([seed, 1000, label]).permutation(n)
    parts = dict(train=order[n_val + n_test:], val=order[:n_val],
                 test=order[n_val:n_val + n_test])
    return {split: sorted(s for i in idx for s in groups[keys[i]])
            for split, idx in parts.items()}


# ----------------------------------------------------------------------------- images
def resolve_background(background_root: str, entry) -> str:
    """Path of a background: ``(package, file)`` or a relative file."""
    package, rel = entry if isinstance(entry, tuple) else (None, entry)
    candidates = ([osp.join(background_root, package, rel)] if package else []) + [
        osp.join(background_root, rel)]
    for c in candidates:
        if osp.isfile(c):
            return c
    raise FileNotFoundError(f'background {rel} not found under {background_root} (looked '
                            f'for {", ".join(candidates)})')


def load_background(path: str, min_side: int) -> np.ndarray:
    """RGB uint8 photo resized (area) so that its shorter side is ``min_side``."""
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise OSError(f'cannot read background {path}')
    scale = min_side / min(img.shape[:2])
    size = (max(min_side, round(img.shape[1] * scale)), max(min_side, round(img.shape[0] * scale)))
    return cv2.resize(img, size, interpolation=cv2.INTER_AREA)[..., ::-1]


def render_sample(rng: np.random.Generator, stamp: Stamp, backgrounds: Sequence[np.ndarray],
                  cfg: StampBenchmarkConfig) -> Tuple[np.ndarray, np.ndarray]:
    """One image: a random crop of a random background with ``stamp`` pasted on it.

    Returns (image (S, S, 3) uint8 RGB, mask (S, S) uint8 {0, 1}).
    """
    size = cfg.image_size
    bg = backgrounds[int(rng.integers(len(backgrounds)))]
    side = int(round(rng.uniform(*cfg.background_crop) * min(bg.shape[:2])))
    y = int(rng.integers(bg.shape[0] - side + 1))
    x = int(rng.integers(bg.shape[1] - side + 1))
    canvas = cv2.resize(bg[y:y + side, x:x + side], (size, size),
                        interpolation=cv2.INTER_AREA).astype(np.float32)
    if rng.random() < 0.5:
        canvas = canvas[:, ::-1]

    h, w = stamp.alpha.shape
    scale = rng.uniform(*cfg.object_size) * size / max(h, w)
    ow, oh = max(1, int(round(w * scale))), max(1, int(round(h * scale)))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    # resize colour premultiplied by alpha: no dark fringe from transparent pixels
    premult = cv2.resize(stamp.rgb * stamp.alpha[..., None], (ow, oh), interpolation=interp)
    alpha = np.clip(cv2.resize(stamp.alpha, (ow, oh), interpolation=interp), 0, 1)
    if rng.random() < cfg.flip_prob:
        premult, alpha = premult[:, ::-1], alpha[:, ::-1]
    y0 = int(rng.integers(size - oh + 1))
    x0 = int(rng.integers(size - ow + 1))
    region = canvas[y0:y0 + oh, x0:x0 + ow]
    canvas[y0:y0 + oh, x0:x0 + ow] = premult + (1 - alpha[..., None]) * region
    mask = np.zeros((size, size), np.uint8)
    mask[y0:y0 + oh, x0:x0 + ow] = alpha * 255 > cfg.alpha_threshold
    if not mask.any():
        raise RuntimeError(f'stamp {stamp.path} vanished at scale {scale:.3f}')
    return np.clip(np.round(canvas), 0, 255).astype(np.uint8), mask


# ----------------------------------------------------------------------------- writing
def _record(cfg: StampBenchmarkConfig, split_stamps_: Dict, backgrounds: Sequence) -> str:
    # bump format_version whenever the drawing changes, so that ``reuse`` never keeps
    # a set made by older code
    rec = dict(generator='tedloc_mm.embedded_benchmarks.stamps', format_version=1,
               config=dataclasses.asdict(cfg), stamps=split_stamps_,
               backgrounds=[list(b) if isinstance(b, tuple) else b for b in backgrounds])
    return json.dumps(rec, indent=2, sort_keys=True) + '\n'


def generate_stamp_benchmark(out_dir: str, stamp_root: str, background_root: str,
                             cfg: Optional[StampBenchmarkConfig] = None,
                             overwrite: bool = False, reuse: bool = False,
                             logger: Optional[Callable[[str], None]] = None,
                             **overrides) -> Dict[str, int]:
    """Write the benchmark under ``out_dir`` (layout in the module docstring).

    Args:
        out_dir: root folder; metadata paths are relative to it.
        stamp_root: the folder of stamp categories (``.../usr/share/tuxpaint/stamps``).
        background_root: where the background photos are found (see the config).
        cfg: the options; ``overrides`` replace single fields.
        overwrite: replace an existing set.
        reuse: keep an existing set whose ``generator_config.json`` (written last) is
            exactly this one and write nothing.
        logger: progress messages (e.g. ``print``); skipped stamps are counted there.

    Returns:
        dict: images per split, ``'reused'`` (0/1) and ``'skipped_stamps'``.
    """
    cfg = dataclasses.replace(cfg or StampBenchmarkConfig(), **overrides)
    cfg.validate()
    log = logger or (lambda msg: None)
    names = cfg.class_names()

    per_split = {s: [] for s in SPLITS}   # per split: per class list of Stamp
    stamp_lists, skipped = {s: {} for s in SPLITS}, []
    for label, cls in enumerate(cfg.classes):
        usable = {}
        for rel in list_stamps(stamp_root, cls):
            stamp = load_stamp(stamp_root, rel, cfg.alpha_threshold)
            if stamp is None or max(stamp.alpha.shape) < cfg.min_stamp_side:
                skipped.append(rel)
                continue
            usable[rel] = stamp
        parts = split_stamps(sorted(usable), cfg.stamp_split, cfg.seed, label, cls)
        for split in SPLITS:
            per_split[split].append([usable[r] for r in parts[split]])
            stamp_lists[split][names[label]] = parts[split]
    if skipped:
        log(f'skipped {len(skipped)} stamp(s) without alpha or smaller than '
            f'{cfg.min_stamp_side} px: {", ".join(skipped)}')

    bg_entries = cfg.backgrounds if cfg.backgrounds is not None else BACKGROUNDS
    record = _record(cfg, stamp_lists, bg_entries)
    counts = dict(train=cfg.num_train, val=cfg.num_val, test=cfg.num_test)
    totals = {s: counts[s] * len(names) for s in SPLITS}
    config_file = osp.join(out_dir, 'metadata', 'generator_config.json')
    if osp.isfile(config_file):
        with open(config_file) as f:
            same = f.read() == record
        if reuse and same:
            return dict(totals, reused=1, skipped_stamps=len(skipped))
        if not overwrite:
            raise FileExistsError(
                f'{out_dir} already holds a stamp benchmark ({"same" if same else "different"}'
                ' config); pass overwrite=True (--overwrite) to replace it or reuse=True '
                '(--reuse) to keep it')
    for sub in ('images', 'masks', 'metadata'):
        if osp.isdir(osp.join(out_dir, sub)):
            if not overwrite:
                raise FileExistsError(f'{osp.join(out_dir, sub)} exists; pass overwrite=True')
            shutil.rmtree(osp.join(out_dir, sub))

    # photos at a size where even the smallest crop is not upsampled
    bg_side = int(np.ceil(cfg.image_size / cfg.background_crop[0]))
    backgrounds = [load_background(resolve_background(background_root, b), bg_side)
                   for b in bg_entries]
    write_lines(osp.join(out_dir, 'metadata', 'class_names.txt'), names)
    for split_code, split in enumerate(SPLITS):
        writer = WSOLSplitWriter(out_dir, split, with_masks=split in MASK_SPLITS)
        stamp_rows = []
        for label, name in enumerate(names):
            pool = per_split[split][label]
            folder = f'{label:02d}_{re.sub(r"[^A-Za-z0-9]+", "_", name)}'
            for j in range(counts[split]):
                rng = np.random.default_rng([cfg.seed, split_code, label, j])
                stamp = pool[j % len(pool)]
                image, mask = render_sample(rng, stamp, backgrounds, cfg)
                img_id = f'images/{split}/{folder}/{split}_{label:02d}_{j:05d}.{cfg.image_ext}'
                writer.add(img_id, image, label, [mask])
                stamp_rows.append(f'{img_id},{stamp.path}')
        writer.close()
        write_lines(osp.join(out_dir, 'metadata', split, 'stamps.txt'), stamp_rows)
        log(f'{split}: {totals[split]} images written '
            f'({sum(len(p) for p in per_split[split])} stamps)')
    with open(config_file, 'w', newline='\n') as f:
        f.write(record)
    return dict(totals, reused=0, skipped_stamps=len(skipped))
