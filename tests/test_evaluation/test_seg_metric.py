"""Masks exported for MMSegmentation load with its BaseSegDataset and are scored by its
IoUMetric (+ FGIoUMetric) with the IoU counted by hand.

The hand-made set: the val split of tests/tiny_seg_data.py at 4 x 4 px, classes
('background', 'a', 'b'):

    image 0 (class a)   true mask rows 0-1, cols 2-3 (4 px)
                        score map rows 0-1, cols 1-3 (6 px), predicted class a
    image 1 (class b)   true mask rows 1-2, cols 1-2 (4 px)
                        score map rows 1-2, col 1 (2 px), predicted class a (wrong)

By hand over both images (32 px): background I 10 + 12 = 22, U 26; class a I 4,
U 4 + 6 + 2 - 4 = 8; class b I 0, U 4. mIoU = (22/26 + 4/8 + 0/4) / 3 = 44.87;
aAcc = (22 + 4) / 32 = 81.25. Class-agnostic: foreground I 4 + 2 = 6, U 8 + 8 - 6 = 10
-> FG-IoU 60.0; background I 22, U 26 -> BG-IoU 84.62.
"""
import importlib.util
import os.path as osp

import numpy as np
import pytest
import torch

from tiny_seg_data import make_wsol

from tedloc_mm.fileio.seg_labels import SegLabelError, read_label_png

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _tool(path, name):
    spec = importlib.util.spec_from_file_location(name, osp.join(REPO, path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


EXPORT = _tool('tools/dataset_converters/wsol_to_mmseg.py', 'wsol_to_mmseg')
MAPS = {'images/val/a/x0.jpg': (np.s_[0:2, 1:4], 0), 'images/val/b/x1.jpg': (np.s_[1:3, 1:2], 0)}


@pytest.fixture
def exported(tmp_path):
    """(true-mask export, score-map export) of the hand-made val split."""
    data = make_wsol(str(tmp_path / 'wsol'), splits=(('val', 2), ), mask_splits=('val', ),
                     size=4)
    scoremaps = tmp_path / 'scoremaps'
    lines = []
    for img_id, (region, cls) in MAPS.items():
        m = np.zeros((4, 4), np.float32)
        m[region] = 1
        (scoremaps / osp.dirname(img_id)).mkdir(parents=True, exist_ok=True)
        np.save(scoremaps / (img_id + '.npy'), m)
        lines.append(f'{img_id},{cls}\n')
    (tmp_path / 'pred.txt').write_text(''.join(lines))
    gt, pred = str(tmp_path / 'gt'), str(tmp_path / 'pred')
    EXPORT.main(['true-masks', '--data-root', data, '--split', 'val', '--out', gt])
    EXPORT.main(['scoremaps', str(scoremaps), '--data-root', data, '--split', 'val',
                 '--out', pred, '--fg-thr', '0.5', '--class-source', 'pred',
                 '--predictions', str(tmp_path / 'pred.txt')])
    return gt, pred


def test_export_loads_with_mmseg_base_seg_dataset(exported):
    from mmengine.registry import DefaultScope
    from mmseg.datasets import BaseSegDataset
    gt, _ = exported
    with DefaultScope.overwrite_default_scope('mmseg'):
        ds = BaseSegDataset(
            data_root=gt, ann_file='splits/val.txt', img_suffix='.jpg',
            data_prefix=dict(img_path='img_dir', seg_map_path='ann_dir'),
            metainfo=dict(classes=('background', 'a', 'b')), reduce_zero_label=False,
            pipeline=[dict(type='LoadImageFromFile'), dict(type='LoadAnnotations'),
                      dict(type='PackSegInputs')], test_mode=True)
        items = [ds[i] for i in range(len(ds))]
    assert len(ds) == 2
    expect0, expect1 = np.zeros((4, 4), np.int64), np.zeros((4, 4), np.int64)
    expect0[0:2, 2:4] = 1
    expect1[1:3, 1:3] = 2
    got = [item['data_samples'].gt_sem_seg.data[0].numpy() for item in items]
    np.testing.assert_array_equal(got[0], expect0)
    np.testing.assert_array_equal(got[1], expect1)
    assert items[0]['inputs'].shape == (3, 4, 4)  # the image, through the img_dir link


def test_iou_metric_scores_the_export_as_counted_by_hand(exported):
    from tedloc_mm.evaluation import evaluate_seg_export
    gt, pred = exported
    pred1 = read_label_png(osp.join(pred, 'ann_dir', 'images/val/b/x1.png'))
    assert pred1[1:3, 1].tolist() == [1, 1] and pred1.sum() == 2  # class a, 2 px
    metrics = evaluate_seg_export(pred, gt, 'val')
    assert metrics['mIoU'] == pytest.approx(round((22 / 26 + 4 / 8 + 0) / 3 * 100, 2))
    assert metrics['aAcc'] == pytest.approx(81.25)
    assert metrics['FG-IoU'] == pytest.approx(60.0)
    assert metrics['BG-IoU'] == pytest.approx(round(22 / 26 * 100, 2))


def test_fg_iou_metric_counts_a_predicted_ignore_as_a_miss():
    """IoUMetric's convention, kept by FGIoUMetric: a label 255 is left out; a
    predicted 255 is neither foreground nor background."""
    from tedloc_mm.evaluation import FGIoUMetric
    label = torch.tensor([[1, 1, 0, 255]])
    pred = torch.tensor([[2, 255, 255, 1]])
    metric = FGIoUMetric()
    metric.process({}, [dict(pred_sem_seg=dict(data=pred[None]),
                             gt_sem_seg=dict(data=label[None]))])
    # valid pixels 0..2; FG: I 1 (pixel 0), U 2 (pixels 0, 1); BG: I 0, U 1 (pixel 2)
    assert metric.compute_metrics(metric.results) == {'FG-IoU': 50.0, 'BG-IoU': 0.0}


def test_scoring_a_split_without_true_masks_names_it(exported):
    from tedloc_mm.evaluation import evaluate_seg_export
    gt, pred = exported
    with pytest.raises(SegLabelError, match=r"holds no true masks of split 'test'"):
        evaluate_seg_export(pred, gt, 'test')
