"""Write a WSOL benchmark split in the wsolevaluation metadata format (Choe et al., CVPR 2020).

One :class:`WSOLSplitWriter` per split collects the metadata lines of the images added to
it and writes them on :meth:`~WSOLSplitWriter.close`. Layout (paths relative to the
benchmark root, no header lines, comma separated, ``\\n`` line ends)::

    <image id>                                  the image (PNG or JPEG)
    masks/<split>/<folder>/<stem>_obj<i>.png    object masks of val/test, 0 / 255
    metadata/<split>/image_ids.txt              path
    metadata/<split>/class_labels.txt           path,label
    metadata/<split>/image_sizes.txt            path,w,h
    metadata/<split>/localization.txt           path,x0,y0,x1,y1   (one line per object)
    metadata/<split>/localization_masks.txt     path,mask_path,ignore_path (val/test)

Boxes are inclusive pixel indices (``x1 = max x`` of the mask), as wsolevaluation's IoU
expects. The glider generator (:mod:`tedloc_mm.embedded_benchmarks.gliders`) writes the same files plus its part
annotations.
"""
import os
import os.path as osp
from typing import Sequence, Tuple

import cv2
import numpy as np


METADATA_FILES = ('image_ids', 'class_labels', 'image_sizes', 'localization')


def mask_to_box(mask: np.ndarray) -> Tuple[int, int, int, int]:
    """Tight inclusive box (x0, y0, x1, y1) of the non-zero pixels of a 2-D mask."""
    ys, xs = np.nonzero(mask)
    if xs.size == 0:
        raise ValueError('empty mask has no box')
    return int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())


def write_image(path: str, array: np.ndarray, jpeg_quality: int = 95) -> None:
    """Write an (H, W, 3) RGB or (H, W) uint8 array with OpenCV (PNG or JPEG by suffix)."""
    os.makedirs(osp.dirname(path), exist_ok=True)
    if array.ndim == 3:
        array = np.ascontiguousarray(array[..., ::-1])  # OpenCV writes BGR
    params = [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality] if path.endswith('.jpg') else []
    if not cv2.imwrite(path, array, params):
        raise OSError(f'could not write {path}')


def write_lines(path: str, lines: Sequence[str]) -> None:
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w', newline='\n') as f:
        f.writelines(line + '\n' for line in lines)


class WSOLSplitWriter:
    """Collect and write one split.

    Args:
        out_dir: the benchmark root.
        split: 'train', 'val' or 'test'.
        with_masks: write object masks and ``localization_masks.txt`` (val/test: PxAP).
        jpeg_quality: quality of ``.jpg`` images.
    """

    def __init__(self, out_dir: str, split: str, with_masks: bool, jpeg_quality: int = 95):
        self.out_dir, self.split, self.with_masks = out_dir, split, with_masks
        self.jpeg_quality = jpeg_quality
        self.lines = {k: [] for k in METADATA_FILES + ('localization_masks',)}

    def add(self, img_id: str, image: np.ndarray, label: int,
            object_masks: Sequence[np.ndarray]) -> None:
        """Write ``image`` (H, W, 3) uint8 RGB as ``img_id`` and record its annotations.

        ``object_masks``: one (H, W) {0, 1} mask per object; each gives one box line.
        """
        if not object_masks:
            raise ValueError(f'{img_id}: an image needs at least one object mask')
        h, w = image.shape[:2]
        write_image(osp.join(self.out_dir, img_id), image, self.jpeg_quality)
        self.lines['image_ids'].append(img_id)
        self.lines['class_labels'].append(f'{img_id},{label}')
        self.lines['image_sizes'].append(f'{img_id},{w},{h}')
        for m in object_masks:
            self.lines['localization'].append(f'{img_id},' + ','.join(map(str, mask_to_box(m))))
        if not self.with_masks:
            return
        folder, name = osp.split(osp.relpath(img_id, osp.join('images', self.split)))
        stem = osp.join('masks', self.split, folder, osp.splitext(name)[0])
        for i, m in enumerate(object_masks):
            mask_id = f'{stem}_obj{i}.png'
            write_image(osp.join(self.out_dir, mask_id), (np.asarray(m) > 0).astype(np.uint8) * 255)
            # wsolevaluation's loader: no ignore region here (exact masks)
            self.lines['localization_masks'].append(f'{img_id},{mask_id},')

    def close(self) -> int:
        """Write the metadata files; return the number of images."""
        for key, lines in self.lines.items():
            if key == 'localization_masks' and not self.with_masks:
                continue
            write_lines(osp.join(self.out_dir, 'metadata', self.split, f'{key}.txt'), lines)
        return len(self.lines['image_ids'])
