"""A grid of segmentation masks for people: one row per image, one column per mask
source (true masks, a localizer's binarised maps, a segmenter's predictions).

Each cell is the image with its mask's class colours blended in (the export's palette;
ignored pixels white) and the foreground outlined in yellow; under the cell a caption
names the classes the mask shows and their share of its foreground pixels. Column titles
sit in a strip above the grid and a colour legend below it: nothing is written over an
image.
"""
import os.path as osp
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from tedloc_mm.fileio.seg_labels import IGNORE_INDEX, read_label_png
from tedloc_mm.fileio.seg_layout import label_stem


def _font(size: int):
    """DejaVu Sans (shipped with matplotlib) at ``size`` px, else PIL's default."""
    try:
        from matplotlib import font_manager
        return ImageFont.truetype(font_manager.findfont('DejaVu Sans'), size)
    except Exception:  # no matplotlib / font: PIL's bitmap font is still legible
        return ImageFont.load_default()


def find_label(column_dir: str, img_id: str) -> str:
    """The label PNG of ``img_id`` in an export (``ann_dir/<id>.png``) or in a flat
    folder of ``<basename>.png`` (MMSegmentation's ``IoUMetric(output_dir=...)``)."""
    for path in (osp.join(column_dir, 'ann_dir', label_stem(img_id) + '.png'),
                 osp.join(column_dir, label_stem(osp.basename(img_id)) + '.png')):
        if osp.isfile(path):
            return path
    raise FileNotFoundError(f'no mask of image {img_id!r} in {column_dir}')


def blend_label(image: np.ndarray, label: np.ndarray,
                palette: Sequence[Sequence[int]]) -> np.ndarray:
    """uint8 RGB (H, W, 3): foreground 45 % image + 55 % class colour, background
    dimmed to 60 %, the foreground's outline yellow."""
    colours = np.zeros((256, 3), np.float32)
    colours[:len(palette)] = np.asarray(palette, np.float32)
    colours[IGNORE_INDEX] = 255
    out = image.astype(np.float32)
    marked = (label > 0)[..., None]
    out = np.where(marked, 0.45 * out + 0.55 * colours[label], 0.6 * out)
    edge = cv2.morphologyEx((label > 0).astype(np.uint8), cv2.MORPH_GRADIENT,
                            np.ones((3, 3), np.uint8))
    out[edge > 0] = (255, 255, 0)
    return out.clip(0, 255).astype(np.uint8)


def class_shares(label: np.ndarray, classes: Sequence[str], top: int = 2) -> str:
    """'bird 80%, fish 20%': the classes of the foreground pixels, largest first."""
    fg = label[(label > 0) & (label != IGNORE_INDEX)]
    if not fg.size:
        return '(no foreground)'
    counts = np.bincount(fg, minlength=len(classes))
    order = [c for c in np.argsort(-counts, kind='stable') if counts[c]][:top]
    text = ', '.join(f'{classes[c]} {round(100 * counts[c] / fg.size)}%' for c in order)
    return text + (' ...' if np.count_nonzero(counts) > top else '')


def draw_mask_grid(img_paths: Sequence[str], img_ids: Sequence[str],
                   columns: Sequence[Tuple[str, Optional[str]]], classes: Sequence[str],
                   palette: Sequence[Sequence[int]], out_file: str, cell: int = 224) -> Tuple[int, int]:
    """Draw the grid into ``out_file``; returns its (width, height).

    Args:
        img_paths: image files, one row each.
        img_ids: their WSOL ids (to find the masks).
        columns: (title, folder) per column; folder None = the image itself.
        classes, palette: of the export (``seg_meta.json``).
        cell: side of a cell in pixels (images are resized to it).
    """
    font, small = _font(max(11, cell // 15)), _font(max(10, cell // 18))
    title_h, caption_h, legend_h = cell // 7, cell // 9, cell // 7
    width = len(columns) * cell
    height = title_h + len(img_ids) * (cell + caption_h) + legend_h
    canvas = Image.new('RGB', (width, height), 'white')
    draw = ImageDraw.Draw(canvas)
    for j, (title, _) in enumerate(columns):
        draw.text((j * cell + 4, 4), title, fill='black', font=font)
    for i, (path, img_id) in enumerate(zip(img_paths, img_ids)):
        image = np.array(Image.open(path).convert('RGB').resize((cell, cell)))
        top = title_h + i * (cell + caption_h)
        for j, (_, folder) in enumerate(columns):
            if folder is None:
                tile, caption = image, osp.basename(img_id)
            else:
                label = cv2.resize(read_label_png(find_label(folder, img_id)), (cell, cell),
                                   interpolation=cv2.INTER_NEAREST)
                tile, caption = blend_label(image, label, palette), class_shares(label, classes)
            canvas.paste(Image.fromarray(tile), (j * cell, top))
            draw.text((j * cell + 3, top + cell + 2), caption, fill='black', font=small)
    x, y = 4, height - legend_h + 4
    for name, rgb in list(zip(classes, palette))[1:] + [('ignored', (255, 255, 255))]:
        draw.rectangle([x, y, x + 14, y + 14], fill=tuple(int(c) for c in rgb), outline='black')
        draw.text((x + 18, y), name, fill='black', font=small)
        x += 26 + int(draw.textlength(name, font=small))
    canvas.save(out_file)
    return canvas.size
