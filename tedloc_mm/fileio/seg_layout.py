"""One MMSegmentation-layout export of a WSOL data set (written by
``tools/dataset_converters/wsol_to_mmseg.py``)::

    OUT/ann_dir/<image id without its extension>.png   label PNGs (:mod:`.seg_labels`)
    OUT/splits/<split>.txt      one id without extension per line (MMSeg's ``ann_file``)
    OUT/img_dir -> the WSOL data root (a symbolic link: images are never copied)
    OUT/seg_meta.json           classes, palette, img_suffix and, per split, where the
                                labels came from (source, thresholds, per image the
                                class used)

MMSegmentation's own ``BaseSegDataset`` loads it::

    BaseSegDataset(data_root=OUT, ann_file='splits/test.txt', img_suffix='.jpg',
                   data_prefix=dict(img_path='img_dir', seg_map_path='ann_dir'),
                   metainfo=dict(classes=..., palette=...), reduce_zero_label=False)

An export holds one label source: the true masks (val / test, to score against) or
one localizer's maps (pseudo-masks), each in its own folder. Ids keep their folders
(``ann_dir/<class>/<name>.png``): MMSeg's ``ann_file`` names may contain sub-folders.
"""
import json
import os
import os.path as osp
from typing import Iterable, Optional, Sequence, Tuple

import numpy as np

from .seg_labels import IGNORE_INDEX, SegLabelError, seg_classes, voc_palette, write_label_png

META_FILE = 'seg_meta.json'
DATA_PREFIX = dict(img_path='img_dir', seg_map_path='ann_dir')


def label_stem(img_id: str) -> str:
    """The name of an image id in split files and ``ann_dir`` (no extension)."""
    return osp.splitext(img_id)[0]


def common_suffix(img_ids: Sequence[str]) -> str:
    """The one extension of all ids: MMSegmentation has one ``img_suffix`` per data set."""
    first = {}
    for img_id in img_ids:
        first.setdefault(osp.splitext(img_id)[1], img_id)
    if len(first) != 1:
        raise SegLabelError(f'image ids have {len(first)} different extensions (e.g. '
                            f'{sorted(first.values())[:3]}); MMSegmentation needs one '
                            'img_suffix per data set')
    return next(iter(first))


def read_seg_meta(root: str) -> dict:
    """``seg_meta.json`` of an export; FileNotFoundError naming the folder otherwise."""
    path = osp.join(root, META_FILE)
    if not osp.isfile(path):
        raise FileNotFoundError(f'{root} is not an export of wsol_to_mmseg.py (no {META_FILE})')
    with open(path, encoding='utf-8') as f:
        return json.load(f)


class SegExportWriter:
    """Writes the label PNGs, the split file and ``seg_meta.json`` of one export.

    Args:
        out_dir: the export folder (created). Splits already in it are kept; its
            classes must be the same.
        data_root: the WSOL data root the image ids are relative to (linked as
            ``img_dir``).
        class_names: the WSOL classes (``class_names.txt``), without background.
    """

    def __init__(self, out_dir: str, data_root: str, class_names: Sequence[str]):
        self.out_dir = out_dir
        self.classes = seg_classes(class_names)
        self.palette = voc_palette(len(self.classes))
        os.makedirs(osp.join(out_dir, 'ann_dir'), exist_ok=True)
        os.makedirs(osp.join(out_dir, 'splits'), exist_ok=True)
        link, target = osp.join(out_dir, 'img_dir'), osp.abspath(data_root)
        if osp.islink(link) and os.readlink(link) != target:
            os.remove(link)
        if not osp.lexists(link):
            os.symlink(target, link)
        self.meta = dict(classes=list(self.classes), palette=self.palette,
                         ignore_index=IGNORE_INDEX, reduce_zero_label=False,
                         img_suffix=None, splits={})
        if osp.isfile(osp.join(out_dir, META_FILE)):
            old = read_seg_meta(out_dir)
            if old.get('classes') != self.meta['classes']:
                raise SegLabelError(f'{out_dir}: its classes {old.get("classes")} differ '
                                    f'from {self.meta["classes"]}; export into another folder')
            self.meta.update(img_suffix=old.get('img_suffix'), splits=old.get('splits', {}))

    def write_split(self, split: str, labels: Iterable[Tuple[str, np.ndarray, dict]],
                    settings: Optional[dict] = None) -> int:
        """Write ``(image id, uint8 (H, W) label, per-image record)`` triples as
        split ``split``; ``settings`` (source, thresholds) go to ``seg_meta.json``.
        Returns the number of labels."""
        ids, records = [], {}
        for img_id, label, record in labels:
            path = osp.join(self.out_dir, 'ann_dir', label_stem(img_id) + '.png')
            os.makedirs(osp.dirname(path), exist_ok=True)
            write_label_png(path, label, self.palette)
            ids.append(img_id)
            records[img_id] = record
        if not ids:
            raise SegLabelError(f'split {split!r} has no images')
        suffix = common_suffix(ids)
        if self.meta['img_suffix'] not in (None, suffix):
            raise SegLabelError(f'split {split!r} has {suffix!r} images, the other splits '
                                f'of {self.out_dir} {self.meta["img_suffix"]!r}')
        self.meta['img_suffix'] = suffix
        with open(osp.join(self.out_dir, 'splits', f'{split}.txt'), 'w') as f:
            f.writelines(label_stem(i) + '\n' for i in ids)
        self.meta['splits'][split] = dict(settings or {}, num_images=len(ids),
                                          images=records)
        tmp = osp.join(self.out_dir, META_FILE + '.tmp')
        with open(tmp, 'w', encoding='utf-8') as f:
            json.dump(self.meta, f, indent=1)
        os.replace(tmp, osp.join(self.out_dir, META_FILE))
        return len(ids)
