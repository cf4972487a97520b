"""CheckSegLabel: refuse a segmentation label that MMSegmentation would use wrongly
without a word. Put it right after MMSegmentation's ``LoadAnnotations``.

Without it, a label value >= num_classes (other than 255) crashes ``CrossEntropyLoss``
in training ("Target 7 is out of bounds", no file named) and is silently dropped by
``IoUMetric``'s histogram in testing (a wrong mIoU); a label of another size than its
image is stretched by ``Resize(keep_ratio=False)`` (misaligned, silently) or makes
``IoUMetric`` fail with a bare IndexError; an RGB colour PNG instead of an index PNG
fails deep in the loss. Cost: one ``np.bincount`` per label (~0.1 ms at 224 x 224).
"""
from typing import Optional

import numpy as np
from mmcv.transforms import BaseTransform

from tedloc_mm.fileio.seg_labels import IGNORE_INDEX, SegLabelError, check_label
from tedloc_mm.registry import TRANSFORMS


@TRANSFORMS.register_module()
class CheckSegLabel(BaseTransform):
    """Check ``gt_seg_map``: one channel, values ``0..num_classes-1`` or
    ``ignore_index``, the size of the image file (``ori_shape``: MMSegmentation's test
    pipelines resize the image *before* loading the label, which keeps its own size).
    Raises :class:`SegLabelError` naming ``seg_map_path``.

    Args:
        num_classes: segmentation classes, background included. Default: the sample's
            ``num_seg_classes``, which ``tedloc.SegExportDataset`` sets from its
            export's ``seg_meta.json``.
        ignore_index: the ignore value (only 255 is supported by the label format).
    """

    def __init__(self, num_classes: Optional[int] = None, ignore_index: int = IGNORE_INDEX):
        if ignore_index != IGNORE_INDEX:
            raise ValueError(f'ignore_index must be {IGNORE_INDEX}, got {ignore_index}')
        self.num_classes = None if num_classes is None else int(num_classes)

    def transform(self, results: dict) -> dict:
        label = np.asarray(results['gt_seg_map'])
        name = f"label {results.get('seg_map_path', '?')}"
        num_classes = self.num_classes or results.get('num_seg_classes')
        if num_classes is None:
            raise KeyError(f'CheckSegLabel has no num_classes for {name}: give it one, or '
                           'load the data with tedloc.SegExportDataset (which reads it '
                           "from the export's seg_meta.json)")
        check_label(label, int(num_classes), name)
        img_hw = tuple(results['ori_shape'][:2])
        if tuple(label.shape[:2]) != img_hw:
            raise SegLabelError(f'{name} is {tuple(label.shape[:2])} (h, w) but its image '
                                f"{results.get('img_path', '?')} is {img_hw}")
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(num_classes={self.num_classes})'
