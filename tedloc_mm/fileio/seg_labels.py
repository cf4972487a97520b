"""Label PNGs of a WSOL split exported for MMSegmentation: the value convention, the
class list and palette, reading, writing and checking.

One 8-bit *palette-mode* PNG per image, at the image's original size:

    0            background
    k + 1        foreground of WSOL class k (0-based line of ``class_names.txt``)
    255          ignore (MMSegmentation's default ``ignore_index``): the uncertain band
                 between a background and a foreground threshold

so the segmentation classes are ``('background', *class_names)`` and a dataset loads
them with ``reduce_zero_label=False`` (0 is a class here, not "unlabelled").
MMSegmentation's ``LoadAnnotations`` (pillow, ``flag='unchanged'``) reads the indices of
a palette PNG; a person opening the file sees the PASCAL VOC colours.

Why every label is range-checked (on write and on read): MMSegmentation's ``IoUMetric``
histograms values ``0..num_classes-1`` only, so a label or prediction outside that
range (other than 255) is silently dropped (a wrong mIoU), and ``CrossEntropyLoss``
fails on it without naming any file.
"""
from typing import List, Sequence, Tuple

import numpy as np

BACKGROUND = 'background'
IGNORE_INDEX = 255


class SegLabelError(ValueError):
    """A label, map or class id that breaks the convention; the message names the item."""


def seg_classes(class_names: Sequence[str]) -> Tuple[str, ...]:
    """The segmentation class list: ``'background'`` first, then the WSOL classes."""
    names = tuple(class_names)
    if BACKGROUND in names:
        raise SegLabelError(f'a WSOL class is called {BACKGROUND!r}: it would clash with '
                            'segmentation class 0 (rename it in class_names.txt)')
    if len(names) + 1 > IGNORE_INDEX:
        raise SegLabelError(f'{len(names)} classes do not fit an 8-bit label next to '
                            f'background and the ignore value {IGNORE_INDEX}')
    return (BACKGROUND, ) + names


def voc_palette(num: int) -> List[List[int]]:
    """RGB colours of ``num`` classes, the PASCAL VOC colour map (index bits spread over
    the channels' high bits): background black, as MMSegmentation users know it."""
    palette = []
    for index in range(num):
        rgb = [0, 0, 0]
        value = index
        for bit in range(8):
            for channel in range(3):
                rgb[channel] |= ((value >> channel) & 1) << (7 - bit)
            value >>= 3
        palette.append(rgb)
    return palette


def check_label(label: np.ndarray, num_seg_classes: int, name: str) -> None:
    """Raise :class:`SegLabelError` naming ``name`` unless ``label`` is one channel
    (H, W) of values ``0..num_seg_classes-1`` or 255."""
    label = np.asarray(label)
    if label.ndim != 2:
        raise SegLabelError(f'{name}: a label map must be one channel (H, W), got shape '
                            f'{label.shape} (an RGB colour PNG instead of an index PNG?)')
    if label.dtype != np.uint8:
        if label.size and (label.min() < 0 or label.max() > IGNORE_INDEX):
            raise SegLabelError(f'{name}: label values {label.min()}..{label.max()} do '
                                'not fit 8 bits')
        label = label.astype(np.uint8)
    counts = np.bincount(label.ravel(), minlength=256)
    bad = np.flatnonzero(counts[num_seg_classes:IGNORE_INDEX]) + num_seg_classes
    if bad.size:
        raise SegLabelError(f'{name}: label values {bad.tolist()} are outside the '
                            f'{num_seg_classes} classes (0..{num_seg_classes - 1}) and not '
                            f'the ignore value {IGNORE_INDEX}')


def write_label_png(path: str, label: np.ndarray, palette: Sequence[Sequence[int]]) -> None:
    """Save a uint8 (H, W) label as an 8-bit palette PNG (255 drawn white)."""
    from PIL import Image
    label = np.asarray(label)
    if label.dtype != np.uint8 or label.ndim != 2:
        raise SegLabelError(f'{path}: a label must be uint8 (H, W), got {label.dtype} '
                            f'{label.shape}')
    flat = [0] * 768
    for index, rgb in enumerate(palette):
        flat[3 * index:3 * index + 3] = [int(c) for c in rgb]
    flat[3 * IGNORE_INDEX:3 * IGNORE_INDEX + 3] = [255, 255, 255]
    image = Image.fromarray(label, mode='P')
    image.putpalette(flat)
    image.save(path)


def read_label_png(path: str) -> np.ndarray:
    """The values of a label PNG as MMSegmentation's ``LoadAnnotations`` reads them
    (pillow, no palette conversion): uint8, (H, W) for an index PNG."""
    from PIL import Image
    try:
        with Image.open(path) as image:
            return np.array(image)
    except FileNotFoundError:
        raise
    except OSError as err:
        raise SegLabelError(f'label {path} is unreadable: {err}') from err
