"""PackWSOLInputs: image and WSOL annotations -> MMPretrain ``DataSample``."""
import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmpretrain.datasets.transforms import PackInputs
from mmpretrain.structures import DataSample

from tedloc_mm.registry import TRANSFORMS
from tedloc_mm.structures import PSEUDO_LABEL_FIELD


@TRANSFORMS.register_module()
class PackWSOLInputs(BaseTransform):
    """Pack the input image and the fields of ``tedloc_mm/structures.py``.

    Output ``dict(inputs=uint8 tensor (3, H, W), data_samples=DataSample)`` with
    data fields ``gt_label``, ``gt_bboxes`` (float32 (N, 4), input pixels; (0, 4)
    when the split has no boxes), ``gt_mask`` / ``ignore_mask`` (uint8, when present)
    and ``pseudo_label_map`` (int64 (h', w'), when sampled), and metainfo ``img_id``,
    ``img_path``, ``ori_shape``, ``img_shape`` ((h, w) of the input),
    ``scale_factor``, ``flip``, ``flip_direction`` (defaults ``(1., 1.)``, False,
    None when no transform set them) and ``ori_gt_bboxes`` (float64 (N, 4), as read).
    """

    def transform(self, results: dict) -> dict:
        img = results['img']
        sample = DataSample()
        sample.set_gt_label(results['gt_label'])
        boxes = results.get('gt_bboxes')
        boxes = np.zeros((0, 4), np.float32) if boxes is None else boxes
        sample.set_field(torch.as_tensor(np.asarray(boxes, np.float32)).reshape(-1, 4),
                         'gt_bboxes')
        for key in ('gt_mask', 'ignore_mask'):
            if results.get(key) is not None:
                sample.set_field(torch.from_numpy(np.ascontiguousarray(results[key],
                                                                       np.uint8)), key)
        if results.get(PSEUDO_LABEL_FIELD) is not None:
            sample.set_field(torch.from_numpy(np.asarray(results[PSEUDO_LABEL_FIELD],
                                                         np.int64)), PSEUDO_LABEL_FIELD)
        ori_boxes = results.get('ori_gt_bboxes')
        ori_boxes = np.zeros((0, 4)) if ori_boxes is None else ori_boxes
        meta = dict(
            img_id=results['img_id'],
            img_path=results.get('img_path'),
            ori_shape=tuple(results['ori_shape'][:2]),
            img_shape=tuple(img.shape[:2]),
            scale_factor=tuple(results.get('scale_factor', (1.0, 1.0))),
            flip=bool(results.get('flip', False)),
            flip_direction=results.get('flip_direction'),
            ori_gt_bboxes=np.asarray(ori_boxes, np.float64).reshape(-1, 4))
        sample.set_metainfo(meta)
        return dict(inputs=PackInputs.format_input(img), data_samples=sample)
