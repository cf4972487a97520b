"""SegExportDataset: MMSegmentation's BaseSegDataset on an export of wsol_to_mmseg.py,
its classes, palette and image suffix read from the export's ``seg_meta.json``."""
import os.path as osp
from typing import List, Optional

from mmengine.registry import DefaultScope
from mmseg.datasets import BaseSegDataset

from tedloc_mm.fileio.seg_layout import DATA_PREFIX, read_seg_meta
from tedloc_mm.registry import DATASETS

#: the key of each sample's dict that holds the number of segmentation classes
#: (background included), read by ``CheckSegLabel`` when it has no ``num_classes``
NUM_CLASSES_KEY = 'num_seg_classes'


@DATASETS.register_module()
class SegExportDataset(BaseSegDataset):
    """One export (``tedloc_mm/fileio/seg_layout.py``), from its folder alone.

    ``data_root`` is the export folder; classes and palette (``metainfo``), the image
    suffix and the folders (``data_prefix``) come from its ``seg_meta.json``, so a
    config or a tool never passes them. Labels keep 0 = background
    (``reduce_zero_label=False``). Given ``metainfo`` classes must be the export's
    (an error names both). Each sample carries ``num_seg_classes`` for
    ``tedloc.CheckSegLabel``. The pipeline builds in the ``'mmseg'`` scope (it holds
    MMSegmentation's transforms by bare name), whatever the caller's.

    Args:
        data_root: the export folder (holding ``seg_meta.json``).
        ann_file: the split file, e.g. ``'splits/train.txt'``.
        **kwargs: the rest of ``BaseSegDataset``'s arguments.
    """

    def __init__(self, data_root: str, ann_file: str = '', metainfo: Optional[dict] = None,
                 **kwargs):
        meta = read_seg_meta(data_root)
        classes, palette = tuple(meta['classes']), [list(c) for c in meta['palette']]
        given = dict(metainfo or {})
        if given.get('classes') is not None and tuple(given['classes']) != classes:
            raise ValueError(f'metainfo classes {tuple(given["classes"])} differ from those '
                             f'of the export {osp.join(data_root, "seg_meta.json")}: '
                             f'{classes}; leave them out (the export\'s are used)')
        metainfo = dict(given, classes=classes, palette=given.get('palette') or palette)
        kwargs.setdefault('data_prefix', dict(DATA_PREFIX))
        if meta.get('img_suffix'):
            kwargs.setdefault('img_suffix', meta['img_suffix'])
        kwargs.setdefault('reduce_zero_label', False)
        with DefaultScope.overwrite_default_scope('mmseg'):
            super().__init__(data_root=data_root, ann_file=ann_file, metainfo=metainfo,
                             **kwargs)

    def load_data_list(self) -> List[dict]:
        data_list = super().load_data_list()
        for info in data_list:
            info[NUM_CLASSES_KEY] = len(self.metainfo['classes'])
        return data_list
