"""Curves, per-class table, failure breakdown and the per-image results file, on
hand-made maps whose every number is worked out by hand below, and on random maps
against the metric itself."""
import json

import cv2
import numpy as np
import pytest
import torch
from protocol_oracle import oracle_iou, random_case

from tedloc_mm.evaluation import WSOLMetric, cam_thresholds, evaluate_image, summarize_records
from tedloc_mm.evaluation.per_image_results import (per_image_lines, read_per_image_results,
                                                    write_per_image_results)
from tedloc_mm.evaluation.wsol_analysis import (failure_breakdown, per_class_markdown,
                                                per_class_table, wsol_curves)

THR = cam_thresholds(0.01)
IOUS = (0.3, 0.5, 0.7)
K = 4


def _one_hot_score(top1):
    s = np.full(K, 0.1)
    s[top1] = 0.9
    return s


def _map_a():
    """GT [8, 8, 23, 23]; 1.0 on that square, 0.5 on the ring [4..27], 0 elsewhere.

    Boxes (x, y, x + w, y + h): inner square (8, 8, 24, 24), IoU 256/289 = 0.886;
    ring + square (4, 4, 28, 28), IoU 256/625 = 0.41. map8 is 255 / 127 / 0; the
    ring is cut at int(t * 255) >= 127, i.e. from t = 0.50 on. So: largest and all
    contours hit at IoU 0.3 at every t, at IoU 0.5 and 0.7 from t = 0.50 on."""
    m = np.zeros((32, 32))
    m[4:28, 4:28] = 0.5
    m[8:24, 8:24] = 1.0
    return m, np.array([[8, 8, 23, 23]])


def _map_b():
    """GT [20, 20, 31, 31]; a large blob 1.0 on [0..15]^2 far from it and a small blob
    0.62 on [20..27]^2 inside it.

    Large blob box (0, 0, 16, 16): IoU 0. Small blob box (20, 20, 28, 28): IoU
    81/144 = 0.5625. map8 of 0.62 is 158, cut from int(t * 255) >= 158, i.e. from
    t = 0.62 on. Largest contour = the large blob: never a hit. All contours: hit at
    IoU 0.3 and 0.5 for t <= 0.61, never at 0.7."""
    m = np.zeros((32, 32))
    m[0:16, 0:16] = 1.0
    m[20:28, 20:28] = 0.62
    return m, np.array([[20, 20, 31, 31]])


#: (map, label, predicted top-1): A right class, B wrong class, C = A with the wrong
#: class, D = B with the right class; at the best threshold (0.50) the kinds are
#: correct, both_wrong, wrong_class, wrong_box
CASES = ((_map_a, 0, 0, 'correct'), (_map_b, 1, 2, 'both_wrong'),
         (_map_a, 0, 3, 'wrong_class'), (_map_b, 1, 1, 'wrong_box'))


def _records(box_thresholds=None):
    recs = []
    for i, (make, label, top1, _) in enumerate(CASES):
        m, gt = make()
        rec = evaluate_image(m, gt, thresholds=THR, iou_thrs=IOUS, pred_score=_one_hot_score(top1),
                             gt_label=label, box_thresholds=box_thresholds,
                             keep_scores=box_thresholds is not None)
        rec['img_id'] = f'img{i}'
        recs.append(rec)
    return recs


def _steps(before, after, first_after):
    """(100,) curve: ``before`` for thresholds < first_after (index), then ``after``."""
    return [float(before)] * first_after + [float(after)] * (100 - first_after)


def test_curves_are_the_hand_computed_ones():
    c = wsol_curves(_records(), THR, IOUS)
    # largest: A and C hit at 0.3 everywhere, at 0.5 / 0.7 from t = 0.50 (index 50)
    assert c['box_acc']['largest']['0.3'] == _steps(50, 50, 0)
    assert c['box_acc']['largest']['0.5'] == _steps(0, 50, 50)
    assert c['box_acc']['largest']['0.7'] == _steps(0, 50, 50)
    # all contours: B and D add hits at 0.3 / 0.5 for t <= 0.61 (index 62 is 0.62)
    assert c['box_acc']['all']['0.3'] == _steps(100, 50, 62)
    assert c['box_acc']['all']['0.5'] == [50.0] * 50 + [100.0] * 12 + [50.0] * 38
    assert c['box_acc']['all']['0.7'] == _steps(0, 50, 50)
    assert c['best_thr'] == 0.5
    assert c['MaxBoxAcc'] == 50.0
    assert c['MaxBoxAccV2'] == pytest.approx((100 + 100 + 50) / 3)
    # Top-1 Loc: only A (box and class right), from t = 0.50
    assert c['top1_loc'] == _steps(0, 25, 50)
    assert c['num_images'] == 4 and len(c['cam_thresholds']) == 100
    # each image at its own best threshold: A and C hit, B and D (largest) never do
    assert c['BoxAcc@per_image_thr'] == 50.0


def test_per_image_threshold_box_accuracy_by_hand():
    """Map A against two GT boxes: [8, 8, 23, 23] is hit only from t = 0.50 on (the
    inner square, IoU 0.886; below, the ring's box has IoU 0.41), [2, 2, 29, 29] (784
    px) only below 0.50 (the ring's box (4, 4, 28, 28), 625 px inside it: IoU 0.797;
    the inner square: 289 / 784 = 0.369). No threshold serves both: MaxBoxAcc 50, each
    image at its own threshold 100."""
    m, gt_inner = _map_a()
    recs = [evaluate_image(m, gt, thresholds=THR, iou_thrs=IOUS)
            for gt in (gt_inner, np.array([[2, 2, 29, 29]]))]
    c = wsol_curves(recs, THR, IOUS)
    assert c['box_acc']['largest']['0.5'] == _steps(50, 50, 0)
    assert c['MaxBoxAcc'] == 50.0
    assert c['BoxAcc@per_image_thr'] == 100.0


def test_curves_agree_with_the_metrics_on_random_maps():
    rng = np.random.default_rng(7)
    recs = []
    for i in range(30):
        m, gt = random_case(rng, ('blob', 'random', 'levels', 'rings')[i % 4], 48)
        recs.append(evaluate_image(m, gt, thresholds=THR, iou_thrs=IOUS,
                                   pred_score=rng.random(K), gt_label=int(rng.integers(K))))
    metrics = summarize_records(recs, THR, IOUS, prefix=None)
    c = wsol_curves(recs, THR, IOUS)
    largest = np.array(c['box_acc']['largest']['0.5'])
    # the V1 curve's maximum at IoU 0.5 is MaxBoxAcc, reached at the reported threshold
    assert largest.max() == metrics['MaxBoxAcc']
    assert largest[int(np.argmin(np.abs(THR - metrics['best_thr'])))] == metrics['MaxBoxAcc']
    assert c['best_thr'] == metrics['best_thr']
    # V2 is the mean of the all-contour curves' maxima
    maxima = [max(c['box_acc']['all'][f'{t:g}']) for t in IOUS]
    assert np.mean(maxima) == pytest.approx(metrics['MaxBoxAccV2'], abs=1e-12)
    for t, v in zip(IOUS, maxima):
        assert v == metrics[f'MaxBoxAccV2@{t:g}']
    top1 = np.array(c['top1_loc'])
    assert top1.max() == metrics['Top1Loc']
    assert top1[int(np.argmin(np.abs(THR - metrics['best_thr'])))] == metrics['Top1Loc@best_thr']


def test_failure_counts_add_up_and_match_the_metrics():
    b = failure_breakdown(_records(), THR, IOUS)
    assert b['counts'] == dict(correct=1, wrong_class=1, wrong_box=1, both_wrong=1)
    assert b['kinds'] == [k for *_, k in CASES]
    assert b['cam_threshold'] == 0.5
    rng = np.random.default_rng(3)
    recs = _records() * 3      # random maps rarely hit their random boxes: add hits
    for i in range(40):
        m, gt = random_case(rng, ('blob', 'random', 'noisy', 'rings')[i % 4], 40)
        label = int(rng.integers(K))
        # half of the images classified right
        top1 = label if i % 2 else int((label + 1) % K)
        recs.append(evaluate_image(m, gt, thresholds=THR, iou_thrs=IOUS,
                                   pred_score=_one_hot_score(top1), gt_label=label))
    metrics = summarize_records(recs, THR, IOUS, prefix=None)
    b = failure_breakdown(recs, THR, IOUS)
    n = b['counts']
    assert sum(n.values()) == len(recs) == b['num_images']
    assert n['correct'] * 100 / len(recs) == pytest.approx(metrics['Top1Loc@best_thr'])
    assert (n['correct'] + n['wrong_box']) * 100 / len(recs) == pytest.approx(
        metrics['Top1Cls'])
    assert (n['correct'] + n['wrong_class']) * 100 / len(recs) == pytest.approx(
        metrics['MaxBoxAcc'])
    assert min(n.values()) > 0   # the random maps exercise every kind


def test_per_class_table_by_hand():
    rows = per_class_table(_records(), THR, IOUS, class_names=['cat', 'dog|x'])
    # class 0: A (box, class right), C (box right, class wrong); class 1: B, D (box
    # wrong; D's class right)
    assert [(r['class'], r['name'], r['images'], r['BoxAcc'], r['Top1Loc'], r['Top1Cls'])
            for r in rows] == [(0, 'cat', 2, 100.0, 50.0, 50.0),
                               (1, 'dog|x', 2, 0.0, 0.0, 50.0),
                               (-1, 'all', 4, 50.0, 25.0, 50.0)]
    md = per_class_markdown(rows)
    assert '| 1 | dog\\|x | 2 | 0.00 | 0.00 | 50.00 |' in md
    assert 'CAM threshold 0.5' in md


def test_per_image_file_round_trip(tmp_path):
    recs = _records(box_thresholds=THR)
    lines = per_image_lines(recs, THR, IOUS, 0.5, thr_index=50)
    path = str(tmp_path / 'per_image.jsonl')
    write_per_image_results(path, lines, 0.5, 'best', 0.5, ['cat', 'dog'])
    header, back = read_per_image_results(path)
    assert header['version'] == 1 and header['num_images'] == 4
    assert header['classes'] == ['cat', 'dog'] and header['cam_threshold'] == 0.5
    # boxes at t = 0.50 by hand (docstrings of _map_a / _map_b)
    assert [b['pred_box'] for b in back] == [[8, 8, 24, 24], [0, 0, 16, 16]] * 2
    assert back[0]['iou'] == round(256 / 289, 4) and back[1]['ious'] == [0.0]
    assert [b['kind'] for b in back] == [k for *_, k in CASES]
    assert [b['box_correct'] for b in back] == [True, False, True, False]
    assert back[0]['top5'][0] == 0 and back[0]['top5_scores'][0] == pytest.approx(0.9)
    assert back[0]['img_id'] == 'img0' and back[0]['size'] == [32, 32]
    # one threshold lower (0.49) the ring of A is still in the mask
    at_049 = per_image_lines(recs, THR, IOUS, 0.5, thr_index=49)
    assert at_049[0]['pred_box'] == [4, 4, 28, 28] and at_049[0]['kind'] == 'wrong_box'


def _plain_largest_box(map01, thr):
    """The reference loop's box at one threshold (as tests/protocol_oracle.py)."""
    h, w = map01.shape
    map8 = (map01 * 255).astype(np.uint8)
    _, mask = cv2.threshold(map8, int(thr * np.max(map8)), 255, cv2.THRESH_BINARY)
    contours = cv2.findContours(mask, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)[0]
    if not contours:
        return [0, 0, 0, 0]
    x, y, bw, bh = cv2.boundingRect(max(contours, key=cv2.contourArea))
    return [x, y, min(x + bw, w - 1), min(y + bh, h - 1)]


def test_per_image_boxes_are_the_reference_boxes_on_random_maps():
    rng = np.random.default_rng(11)
    recs, cases = [], []
    for i in range(20):
        m, gt = random_case(rng, ('blob', 'random', 'levels', 'rings')[i % 4], 40)
        cases.append((m, gt))
        recs.append(evaluate_image(m, gt, thresholds=THR, iou_thrs=IOUS, box_thresholds=THR,
                                   pred_score=rng.random(K), gt_label=0))
    for idx in (10, 33, 71):
        for line, (m, gt) in zip(per_image_lines(recs, THR, IOUS, 0.5, thr_index=idx), cases):
            box = _plain_largest_box(m, THR[idx])
            assert line['pred_box'] == box
            assert line['ious'] == [round(oracle_iou(box, g), 4) for g in gt.tolist()]
            assert line['box_correct'] == (max(oracle_iou(box, g) for g in gt) >= 0.5), line


@pytest.mark.parametrize('content, message', [
    ('{"format": "other"}\n', 'not a per-image results file'),
    ('{"format": "tedloc_mm.wsol_per_image", "version": 2}\n', 'version 2'),
    ('nonsense\n', 'not a per-image results header'),
])
def test_bad_per_image_files_are_named(tmp_path, content, message):
    path = tmp_path / 'bad.jsonl'
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        read_per_image_results(str(path))


def test_truncated_per_image_file_is_refused(tmp_path):
    path = str(tmp_path / 'per_image.jsonl')
    lines = per_image_lines(_records(box_thresholds=THR), THR, IOUS, 0.5, thr_index=50)
    write_per_image_results(path, lines, 0.5, 'best', 0.5)
    text = open(path).read().splitlines()
    open(path, 'w').write('\n'.join(text[:-1]) + '\n')
    with pytest.raises(ValueError, match='3 image lines, the header says 4'):
        read_per_image_results(path)
    open(path, 'w').write('\n'.join(text[:2] + ['{"img_id": 1}']) + '\n')
    with pytest.raises(ValueError, match=r'per_image.jsonl:3: missing'):
        read_per_image_results(path)


def _box_mask(box):
    mask = np.zeros((32, 32), bool)
    mask[box[1]:box[3] + 1, box[0]:box[2] + 1] = True
    return mask


def _metric_samples():
    out = []
    for i, (make, label, top1, _) in enumerate(CASES):
        m, gt = make()
        out.append(dict(pred_map=torch.as_tensor(m), pred_score=torch.as_tensor(
            _one_hot_score(top1)), gt_label=torch.tensor([label]), img_id=f'img{i}',
            img_path=f'/data/img{i}.png', img_shape=(32, 32), ori_shape=(32, 32),
            ori_gt_bboxes=gt.astype(np.float64), gt_mask=_box_mask(gt[0])))
    return out


def test_metric_writes_the_analysis_files(tmp_path):
    metric = WSOLMetric(analysis_dir=str(tmp_path))
    metric.dataset_meta = dict(classes=['cat', 'dog', 'cow', 'pig'])
    metric.process({}, _metric_samples())
    metrics = metric.evaluate(4)
    curves = json.load(open(tmp_path / 'curves.json'))
    assert max(curves['box_acc']['largest']['0.5']) == metrics['wsol/MaxBoxAcc'] == 50.0
    assert curves['best_thr'] == metrics['wsol/best_thr']
    assert curves['pxap']['PxAP'] == metrics['wsol/PxAP']
    # PxAP is the area under the written PR curve (rectangles from recall 0, highest
    # bin first); the GT masks (the boxes) are not the maps' top pixels: below 100
    p, r = np.array(curves['pxap']['precision']), np.array(curves['pxap']['recall'])
    assert np.sum(p * np.diff(np.r_[0, r])) * 100 == pytest.approx(metrics['wsol/PxAP'])
    assert 40 < metrics['wsol/PxAP'] < 95
    failures = json.load(open(tmp_path / 'failures.json'))
    assert failures['percent']['correct'] == metrics['wsol/Top1Loc@best_thr']
    header, lines = read_per_image_results(str(tmp_path / 'per_image.jsonl'))
    assert header['threshold_source'] == 'best' and header['classes'][0] == 'cat'
    assert [ln['img_id'] for ln in lines] == ['img0', 'img1', 'img2', 'img3']
    assert lines[0]['img_path'] == '/data/img0.png'
    # the header row, classes 0 and 1, all
    assert (tmp_path / 'per_class.md').read_text().count('\n| ') == 4
    csv_lines = (tmp_path / 'per_class.csv').read_text().splitlines()
    assert csv_lines[0] == 'class,name,images,BoxAcc,Top1Loc,Top1Cls,cam_threshold'
    assert csv_lines[-1].startswith('-1,all,4,50.0,25.0,50.0')


def test_metric_per_image_at_a_given_threshold(tmp_path):
    metric = WSOLMetric(analysis_dir=str(tmp_path), per_image_thr=0.3)
    metric.process({}, _metric_samples())
    metric.evaluate(4)
    header, lines = read_per_image_results(str(tmp_path / 'per_image.jsonl'))
    assert header['cam_threshold'] == 0.3 and header['threshold_source'] == 'given'
    # at 0.3 the ring of A is still in: (4, 4, 28, 28), IoU 0.41 < 0.5
    assert lines[0]['pred_box'] == [4, 4, 28, 28] and lines[0]['box_correct'] is False
    assert lines[0]['kind'] == 'wrong_box'
    with pytest.raises(ValueError, match='not one of'):
        WSOLMetric(analysis_dir=str(tmp_path), per_image_thr=0.305)


def test_records_without_analysis_stay_compact():
    m, gt = _map_a()
    rec = evaluate_image(m, gt, thresholds=THR, iou_thrs=IOUS, pred_score=_one_hot_score(0),
                         gt_label=0)
    assert set(rec) == {'hits', 'top5', 'label'}
