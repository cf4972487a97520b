"""A tiny hand-made WSOL data set with masks, for the MMSegmentation export tests.

Classes ``a`` and ``b``; every image is ``size`` x ``size`` (h = w), a grey background
with a coloured square (red for ``a``, blue for ``b``) whose mask is the square. Splits
listed in ``mask_splits`` have a ``localization.txt`` of masks, the others none (as a
WSOL train split).
"""
import os
import os.path as osp

import numpy as np
from PIL import Image

CLASS_NAMES = ('a', 'b')
COLOURS = ((220, 30, 30), (30, 30, 220))


def square(size: int, index: int) -> tuple:
    """(y0, y1, x0, x1) of image ``index``'s square: shifts with the index."""
    side = size // 2
    off = (index * 3) % (size - side)
    return off, off + side, size - side - off, size - off


def make_wsol(root: str, splits=(('train', 4), ('val', 2), ('test', 2)),
              mask_splits=('val', 'test'), size: int = 16) -> str:
    """Write the data set under ``root``; returns ``root``. Image ``i`` of a split has
    class ``i % 2``; ids ``images/<split>/<class>/x<i>.jpg``."""
    meta = osp.join(root, 'metadata')
    os.makedirs(meta, exist_ok=True)
    with open(osp.join(meta, 'class_names.txt'), 'w') as f:
        f.write(''.join(n + '\n' for n in CLASS_NAMES))
    for split, count in splits:
        ids, labels = [], []
        for i in range(count):
            cls = i % 2
            img_id = f'images/{split}/{CLASS_NAMES[cls]}/x{i}.jpg'
            y0, y1, x0, x1 = square(size, i)
            img = np.full((size, size, 3), 128, np.uint8)
            img[y0:y1, x0:x1] = COLOURS[cls]
            os.makedirs(osp.join(root, osp.dirname(img_id)), exist_ok=True)
            Image.fromarray(img).save(osp.join(root, img_id), quality=95)
            if split in mask_splits:
                mask = np.zeros((size, size), np.uint8)
                mask[y0:y1, x0:x1] = 255
                path = osp.join(root, 'masks', split, f'x{i}.png')
                os.makedirs(osp.dirname(path), exist_ok=True)
                Image.fromarray(mask).save(path)
            ids.append(img_id)
            labels.append(cls)
        d = osp.join(meta, split)
        os.makedirs(d, exist_ok=True)
        with open(osp.join(d, 'image_ids.txt'), 'w') as f:
            f.writelines(i + '\n' for i in ids)
        with open(osp.join(d, 'class_labels.txt'), 'w') as f:
            f.writelines(f'{i},{c}\n' for i, c in zip(ids, labels))
        with open(osp.join(d, 'image_sizes.txt'), 'w') as f:
            f.writelines(f'{i},{size},{size}\n' for i in ids)
        if split in mask_splits:
            with open(osp.join(d, 'localization.txt'), 'w') as f:
                f.writelines(f'{img_id},masks/{split}/x{k}.png,\n'
                             for k, img_id in enumerate(ids))
    return root
