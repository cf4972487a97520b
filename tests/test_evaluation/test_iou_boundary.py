"""The IoU boundary of the WSOL protocol: a box whose IoU with the GT box *equals* an IoU
threshold (30, 50, 70) counts as correct, as in the reference's ``iou >= t / 100``
(``clovaai/wsolevaluation``, ``BoxEvaluator.accumulate``), through WSOLMetric and through
``tools/analysis_tools/eval_scoremaps.py``.

The boxes of the protocol are inclusive pixel boxes: the IoU adds 1 to each side
(area = (x1 - x0 + 1) * (y1 - y0 + 1)), and a predicted box is OpenCV's
``boundingRect`` read as (x, y, x + w, y + h), which reaches one pixel past the
thresholded region. A map lit on the pixel columns x0..x1 - 1 and rows y0..y1 - 1
therefore predicts the box (x0, y0, x1, y1) at every CAM threshold.

The cases put the GT box inside the predicted box, so IoU = area(GT) / area(pred),
flush with its right and bottom ends, the side where the protocol's box reaches one
pixel past the lit region (a box without that pixel would fall below each threshold):

    IoU 0.3: pred (4, 4, 43, 28): 40 x 25 = 1000, GT (24, 14, 43, 28): 20 x 15 = 300
    IoU 0.5: pred (4, 4, 43, 23): 40 x 20 =  800, GT (24, 4, 43, 23): 20 x 20 = 400
    IoU 0.7: pred (4, 4, 53, 23): 50 x 20 = 1000, GT (19, 4, 53, 23): 35 x 20 = 700
    below 0.5: pred as for 0.5, GT (24, 5, 43, 23): 20 x 19 = 380 -> IoU 0.475

Each IoU is a ratio of integers, computed by one float64 division, which IEEE 754
rounds correctly: 300 / 1000 is the double nearest 3/10, the same double as the
literals 0.3 and 30 / 100 that the thresholds are; so the comparison is exactly at
the boundary, not a rounding away from it.
"""
import importlib.util
import os
import os.path as osp

import numpy as np
import pytest
import torch

from tedloc_mm.evaluation import WSOLMetric, box_iou

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

# name: (predicted box, GT box, IoU as a fraction), boxes inclusive x0, y0, x1, y1
CASES = {
    'iou30': ((4, 4, 43, 28), (24, 14, 43, 28), (300, 1000)),
    'iou50': ((4, 4, 43, 23), (24, 4, 43, 23), (400, 800)),
    'iou70': ((4, 4, 53, 23), (19, 4, 53, 23), (700, 1000)),
    'below50': ((4, 4, 43, 23), (24, 5, 43, 23), (380, 800)),
}
# which IoU thresholds each case reaches (>=), by hand from the fractions above
HITS = {'iou30': (30,), 'iou50': (30, 50), 'iou70': (30, 50, 70), 'below50': (30,)}
# classes: iou50 top-1 right; iou70 right only in the top 5; the others top-1 right
LABELS = {'iou30': 0, 'iou50': 1, 'iou70': 2, 'below50': 3}
TOP5 = {'iou30': (0, 1, 2, 3, 4), 'iou50': (1, 0, 2, 3, 4), 'iou70': (4, 2, 0, 1, 3),
        'below50': (3, 0, 1, 2, 4)}
NUM_CLASSES = 5


def lit_map(size, pred_box):
    """(size, size) float64 map: 1 on the pixels whose protocol box is ``pred_box``
    (columns x0..x1 - 1, rows y0..y1 - 1), 0 elsewhere."""
    x0, y0, x1, y1 = pred_box
    cam = np.zeros((size, size))
    cam[y0:y1, x0:x1] = 1.0
    return cam


def test_the_cases_sit_exactly_on_the_thresholds():
    # inclusive areas by hand (the +1 convention), and the code's IoU equals them
    for name, (pred, gt, (num, den)) in CASES.items():
        inter = (min(pred[2], gt[2]) - max(pred[0], gt[0]) + 1) * \
            (min(pred[3], gt[3]) - max(pred[1], gt[1]) + 1)
        area_p = (pred[2] - pred[0] + 1) * (pred[3] - pred[1] + 1)
        area_g = (gt[2] - gt[0] + 1) * (gt[3] - gt[1] + 1)
        assert (inter, area_p + area_g - inter) == (num, den), name
        assert box_iou([pred], [gt])[0, 0] == num / den, name
    assert 300 / 1000 == 0.3 == 30 / 100 and 400 / 800 == 0.5 and 700 / 1000 == 0.7 == 70 / 100


# expected numbers (percent of 4 images), by hand from HITS:
#   IoU 30: all 4; IoU 50: iou50, iou70; IoU 70: iou70
#   MaxBoxAcc (largest contour, IoU 50) = 2 / 4; the maps have one contour each,
#   so MaxBoxAccV2 per IoU = MaxBoxAcc per IoU: 100, 50, 25 -> mean 175 / 3
#   Top-1 Loc: iou50 (IoU 50 and top-1 right) = 1 / 4; Top-5 Loc: iou50, iou70 = 2 / 4
EXPECTED = {'MaxBoxAcc': 50.0, 'MaxBoxAccV2@0.3': 100.0, 'MaxBoxAccV2@0.5': 50.0,
            'MaxBoxAccV2@0.7': 25.0, 'Top1Loc': 25.0, 'Top5Loc': 50.0, 'best_thr': 0.0}


def _score(top5):
    score = torch.zeros(NUM_CLASSES)
    score[list(top5)] = torch.tensor([0.5, 0.25, 0.125, 0.0625, 0.03125])
    return score


def test_wsol_metric_counts_a_box_exactly_at_each_iou_threshold():
    samples = []
    for name, (pred, gt, _) in CASES.items():
        samples.append(dict(
            pred_map=torch.from_numpy(lit_map(64, pred)), img_id=name,
            ori_shape=(64, 64), img_shape=(64, 64),
            ori_gt_bboxes=np.array([gt], dtype=np.float64),
            gt_label=torch.tensor([LABELS[name]]), pred_score=_score(TOP5[name])))
    metric = WSOLMetric()
    metric.process({}, samples)
    res = metric.evaluate(len(samples))
    for key, value in EXPECTED.items():
        assert res[f'wsol/{key}'] == value, key
    assert res['wsol/MaxBoxAccV2'] == pytest.approx(175 / 3)
    assert res['wsol/Top1Loc@best_thr'] == 25.0 and res['wsol/Top5Loc@best_thr'] == 50.0


def _eval_tool():
    spec = importlib.util.spec_from_file_location(
        'eval_scoremaps_boundary', osp.join(REPO, 'tools', 'analysis_tools', 'eval_scoremaps.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_eval_scoremaps_counts_a_box_exactly_at_each_iou_threshold(tmp_path, capsys):
    """The same cases as saved 224 x 224 score maps of 224 x 224 images (the boxes
    need no rescaling), in wsolevaluation's layout."""
    ids = [f'001.x/{name}.jpg' for name in CASES]
    split = tmp_path / 'meta' / 'CUB' / 'test'
    os.makedirs(split)
    lines = {'image_ids.txt': [], 'class_labels.txt': [], 'image_sizes.txt': [],
             'localization.txt': []}
    pred_lines = []
    for img_id, (name, (pred, gt, _)) in zip(ids, CASES.items()):
        path = tmp_path / 'maps' / (img_id + '.npy')
        os.makedirs(path.parent, exist_ok=True)
        np.save(path, lit_map(224, pred))
        lines['image_ids.txt'].append(img_id)
        lines['class_labels.txt'].append(f'{img_id},{LABELS[name]}')
        lines['image_sizes.txt'].append(f'{img_id},224,224')
        lines['localization.txt'].append(f'{img_id},' + ','.join(map(str, gt)))
        pred_lines.append(f'{img_id},' + ','.join(map(str, TOP5[name])))
    for file, content in lines.items():
        (split / file).write_text('\n'.join(content) + '\n')
    predictions = tmp_path / 'pred.txt'
    predictions.write_text('\n'.join(pred_lines) + '\n')

    def run(*extra):
        return _eval_tool().main([
            '--scoremap_root', str(tmp_path / 'maps'), '--metadata_root', str(tmp_path / 'meta'),
            '--dataset_name', 'CUB', '--split', 'test', '--no_progress', *extra])

    res = run('--predictions', str(predictions))
    m = res['metrics']
    for key, value in EXPECTED.items():
        assert m[key] == value, key
    assert [m['MaxBoxAcc@0.3'], m['MaxBoxAcc@0.5'], m['MaxBoxAcc@0.7']] == [100.0, 50.0, 25.0]
    # the reference's printed number: MaxBoxAcc at IoU 50, or V2 averaged over the IoUs
    assert res['localization'] == 50.0
    assert capsys.readouterr().out.splitlines()[-1] == 'localization: 50.0'
    v2 = run('--multi_contour_eval', '--multi_iou_eval')
    assert v2['localization'] == pytest.approx(175 / 3)
