"""Scoring masks in MMSegmentation's terms: :class:`FGIoUMetric` (class-agnostic
foreground IoU, next to MMSegmentation's ``IoUMetric``) and
:func:`evaluate_seg_export` (``IoUMetric`` + ``FGIoUMetric`` of exported label PNGs,
e.g. a localizer's binarised maps, against the exported true masks).

MMSegmentation is imported when a metric first counts, not with this module: the
``'tedloc'`` metric registry imports this module on first use, and an
MMPretrain-side config should not pay for MMSegmentation.
"""
import os.path as osp
from typing import Dict, Optional, Sequence

import numpy as np
import torch
from mmengine.evaluator import BaseMetric

from tedloc_mm.fileio.seg_labels import IGNORE_INDEX, SegLabelError, check_label, read_label_png
from tedloc_mm.fileio.seg_layout import DATA_PREFIX, read_seg_meta
from tedloc_mm.registry import METRICS


def _intersect_and_union(pred: torch.Tensor, label: torch.Tensor, num_classes: int,
                         ignore_index: int):
    from mmseg.evaluation.metrics import IoUMetric
    return IoUMetric.intersect_and_union(pred, label, num_classes, ignore_index)


@METRICS.register_module()
class FGIoUMetric(BaseMetric):
    """``FG-IoU`` and ``BG-IoU`` (percent) of ``pred_sem_seg`` against ``gt_sem_seg``.

    Every class 1..K counts as foreground, so the number measures the extent of a mask
    whatever class it names, as a WSOL localizer is judged; ``IoUMetric``'s mIoU
    (background + K classes) also counts a wrong class as wrong pixels. Counting is
    ``IoUMetric``'s own (its ``intersect_and_union``), summed over the data set before
    dividing: a label pixel ``ignore_index`` is left out; a *predicted*
    ``ignore_index`` is neither foreground nor background (a miss).
    """

    default_prefix: Optional[str] = None

    def __init__(self, ignore_index: int = IGNORE_INDEX, collect_device: str = 'cpu',
                 prefix: Optional[str] = None, **kwargs):
        super().__init__(collect_device=collect_device, prefix=prefix, **kwargs)
        self.ignore_index = ignore_index

    def _binary(self, seg: torch.Tensor) -> torch.Tensor:
        out = (seg > 0).to(torch.int64)
        out[seg == self.ignore_index] = self.ignore_index
        return out

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            pred = sample['pred_sem_seg']['data'].squeeze()
            label = sample['gt_sem_seg']['data'].squeeze().to(pred)
            self.results.append(_intersect_and_union(self._binary(pred), self._binary(label),
                                                     2, self.ignore_index))

    def compute_metrics(self, results: list) -> Dict[str, float]:
        inter = sum(r[0] for r in results)
        union = sum(r[1] for r in results)
        iou = (inter / union.clamp(min=1)).tolist()
        return {'BG-IoU': round(iou[0] * 100, 2), 'FG-IoU': round(iou[1] * 100, 2)}


def evaluate_seg_export(pred_root: str, gt_root: str, split: str) -> Dict[str, float]:
    """mIoU, aAcc, mAcc (``IoUMetric``) and FG-IoU / BG-IoU of the labels of export
    ``pred_root`` against the true masks of export ``gt_root`` on ``split``.

    The true masks are read through MMSegmentation's ``BaseSegDataset`` and
    ``LoadAnnotations``. Every image of the split needs a predicted label of its size,
    with values in the class list (checked, naming the file); a 255 in a prediction is
    scored as ``IoUMetric`` scores it (a miss), so export scored masks without a band.

    Returns: metric name -> float (IoUMetric's NumPy values converted for JSON).
    """
    gt_meta, pred_meta = read_seg_meta(gt_root), read_seg_meta(pred_root)
    if split not in gt_meta['splits']:
        raise SegLabelError(f'{gt_root} holds no true masks of split {split!r} (it has '
                            f'{sorted(gt_meta["splits"])}): export them with '
                            'wsol_to_mmseg.py true-masks')
    if pred_meta['classes'] != gt_meta['classes']:
        raise SegLabelError(f'the class lists differ: {pred_root} {pred_meta["classes"]}, '
                            f'{gt_root} {gt_meta["classes"]}')
    classes = tuple(gt_meta['classes'])
    from mmengine.evaluator import Evaluator
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('mmseg'):
        from mmseg.datasets import BaseSegDataset
        dataset = BaseSegDataset(
            data_root=gt_root, ann_file=f'splits/{split}.txt', data_prefix=DATA_PREFIX,
            img_suffix=gt_meta['img_suffix'], reduce_zero_label=False,
            metainfo=dict(classes=classes, palette=gt_meta['palette']),
            pipeline=[dict(type='LoadAnnotations')], test_mode=True)
        evaluator = Evaluator([dict(type='IoUMetric', iou_metrics=['mIoU']),
                               dict(type='tedloc.FGIoUMetric')])
    evaluator.dataset_meta = dataset.metainfo
    gt_dir = osp.join(gt_root, DATA_PREFIX['seg_map_path'])
    for index in range(len(dataset)):
        item = dataset[index]
        gt = item['gt_seg_map']
        rel = osp.relpath(item['seg_map_path'], gt_dir)
        pred_path = osp.join(pred_root, DATA_PREFIX['seg_map_path'], rel)
        if not osp.isfile(pred_path):
            raise SegLabelError(f'no predicted label of {rel} (split {split!r}) in '
                                f'{pred_root}: {pred_path}')
        pred = read_label_png(pred_path)
        check_label(pred, len(classes), f'predicted label {pred_path}')
        if pred.shape != gt.shape:
            raise SegLabelError(f'predicted label {pred_path} is {pred.shape} (h, w), its '
                                f'true mask {item["seg_map_path"]} {gt.shape}')
        evaluator.process([dict(
            pred_sem_seg=dict(data=torch.from_numpy(pred.astype(np.int64))[None]),
            gt_sem_seg=dict(data=torch.from_numpy(gt.astype(np.int64))[None]))])
    return {key: float(value) for key, value in evaluator.evaluate(len(dataset)).items()}
