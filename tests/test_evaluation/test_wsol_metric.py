"""WSOLMetric: sample fields, Top-k Loc / classification, PxAP, bad input, and the
equality of one metric instance with two (simulated processes)."""
import pickle

import cv2
import numpy as np
import pytest
import torch
from mmpretrain.structures import DataSample

from tedloc_mm.evaluation import (WSOLMetric, best_cam_threshold, cam_thresholds,
                                  evaluate_maps, pxap_from_histograms, pxap_histograms)
from tedloc_mm.evaluation.wsol_records import record_nbytes
from tedloc_mm.registry import METRICS

K = 10


def _plateau_map(size, outer, inner):
    """0 background, 0.5 on ``outer``, 1.0 on ``inner`` (inclusive pixel boxes)."""
    m = torch.zeros(size, size)
    m[outer[1]:outer[3] + 1, outer[0]:outer[2] + 1] = 0.5
    m[inner[1]:inner[3] + 1, inner[0]:inner[2] + 1] = 1.0
    return m


def _sample(pred_map, boxes=None, label=0, top=(0, 1, 2, 3, 4), img_id='img',
            ori_shape=None, **extra):
    score = torch.zeros(K)
    score[list(top)] = torch.linspace(0.5, 0.1, len(top))
    s = dict(pred_map=pred_map, pred_score=score, gt_label=torch.tensor([label]),
             img_id=img_id, img_shape=tuple(pred_map.shape),
             ori_shape=ori_shape or tuple(pred_map.shape))
    if boxes is not None:
        s['ori_gt_bboxes'] = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    s.update(extra)
    return s


def _run(metric, samples):
    metric.process({}, samples)
    return metric.evaluate(len(samples))


def test_registered_and_names():
    metric = METRICS.build(dict(type='WSOLMetric'))
    m = _plateau_map(32, (4, 4, 27, 27), (10, 10, 20, 20))
    res = _run(metric, [_sample(m, [[4, 4, 28, 28]])])
    assert set(res) == {f'wsol/{k}' for k in (
        'MaxBoxAcc', 'MaxBoxAccV2', 'MaxBoxAccV2@0.3', 'MaxBoxAccV2@0.5', 'MaxBoxAccV2@0.7',
        'best_thr', 'Top1Loc', 'Top5Loc', 'Top1Loc@best_thr', 'Top5Loc@best_thr',
        'Top1Cls', 'Top5Cls')}


def test_datasample_to_dict_is_accepted():
    ds = DataSample().set_gt_label(3).set_pred_score(torch.softmax(torch.arange(K.__float__()), 0))
    ds.set_field(_plateau_map(32, (4, 4, 27, 27), (10, 10, 20, 20)), 'pred_map')
    ds.set_metainfo(dict(img_id='a/b.jpg', ori_shape=(64, 64), img_shape=(32, 32),
                         ori_gt_bboxes=np.array([[8., 8., 56., 56.]])))
    res = _run(WSOLMetric(), [ds.to_dict()])
    # boxes rescaled from 64 px to the 32-px evaluation: (4, 4, 28, 28) = the 0.5 plateau
    assert res['wsol/MaxBoxAcc'] == 100 and res['wsol/best_thr'] == 0.0
    assert res['wsol/Top1Cls'] == 0 and res['wsol/Top5Cls'] == 0   # argmax is class 9


def test_gt_bboxes_fallback_uses_img_shape():
    m = _plateau_map(32, (4, 4, 27, 27), (10, 10, 20, 20))
    s = _sample(m)
    s['gt_bboxes'] = torch.tensor([[4., 4., 28., 28.]])
    res = _run(WSOLMetric(eval_size=64), [s])     # img_shape 32 -> eval 64: (8, 8, 56, 56)
    assert res['wsol/MaxBoxAcc'] == 100


def test_topk_loc_max_and_at_best_threshold():
    """outer-GT images are found for t < 0.5, inner-GT images for t >= 0.5; the fourth
    image is found only by a contour that is not the largest, so MaxBoxAccV2 counts it
    and MaxBoxAcc and Top-k Loc (the largest contour's box) do not."""
    outer, inner = (4, 4, 27, 27), (10, 10, 20, 20)
    m = _plateau_map(32, outer, inner)
    gt_outer, gt_inner = [[4, 4, 28, 28]], [[10, 10, 21, 21]]
    # two blobs at 1.0: a 16 x 16 one off the object (the largest contour, its box
    # (2, 2, 18, 18) misses) and a 7 x 7 one whose box (22, 22, 29, 29) is the GT box
    two = torch.zeros(32, 32)
    two[2:18, 2:18] = 1.0
    two[22:29, 22:29] = 1.0
    samples = [
        _sample(m, gt_outer, label=7, top=(1, 2, 3, 4, 5)),   # loc only below 0.5, cls wrong
        _sample(m, gt_outer, label=7, top=(1, 7, 3, 4, 5)),   # loc below 0.5, top-5 right
        _sample(m, gt_inner, label=2, top=(2, 1, 3, 4, 5)),   # loc from 0.5 up, top-1 right
        _sample(two, [[22, 22, 29, 29]], label=4, top=(4, 0, 1, 2, 3)),  # V2 only, top-1 right
    ]
    res = _run(WSOLMetric(), samples)
    # largest contour: images 1, 2 below 0.5 (2 of 4), image 3 from 0.5 up (1 of 4)
    assert res['wsol/MaxBoxAcc'] == 50.0
    assert res['wsol/best_thr'] == 0.0                        # first of the best thresholds
    # all contours: image 4 at every threshold, with IoU 1 (so at every IoU threshold)
    for iou in ('0.3', '0.5', '0.7'):
        assert res[f'wsol/MaxBoxAccV2@{iou}'] == 75.0, iou      # images 1, 2, 4 below 0.5
    assert res['wsol/MaxBoxAccV2'] == 75.0
    # Top-1 Loc: image 3 at t >= 0.5; image 4 never (its largest contour misses)
    assert res['wsol/Top1Loc'] == 25.0
    assert res['wsol/Top1Loc@best_thr'] == 0
    assert res['wsol/Top5Loc'] == 25.0                        # image 2 (t<.5) or 3 (t>=.5)
    assert res['wsol/Top5Loc@best_thr'] == 25.0
    assert res['wsol/Top1Cls'] == 50.0                        # images 3, 4
    assert res['wsol/Top5Cls'] == 75.0                        # images 2, 3, 4
    assert best_cam_threshold(evaluate_maps([m, m], [gt_outer, gt_inner])) == 0.0
    fixed = _run(WSOLMetric(fixed_thrs=(0.25, 0.6)), samples)
    assert fixed['wsol/BoxAcc@thr0.25'] == 50.0
    assert fixed['wsol/Top1Loc@thr0.25'] == 0
    assert fixed['wsol/BoxAcc@thr0.6'] == fixed['wsol/Top1Loc@thr0.6'] == 25.0
    with pytest.raises(ValueError, match='0.255'):
        WSOLMetric(fixed_thrs=(0.255,))


def test_pxap_hand_computed():
    thr = cam_thresholds(0.25)
    map01 = np.array([[0.9, 0.7], [0.6, 0.1]])
    fg = np.array([[True, False], [True, False]])
    fg_hist, bg_hist = pxap_histograms(map01, fg, None, thr)
    assert fg_hist.tolist() == [0, 0, 1, 1, 0, 0] and bg_hist.tolist() == [1, 0, 1, 0, 0, 0]
    # ranking 0.9 (FG), 0.7 (BG), 0.6 (FG): P = 1 at R = .5, P = 2/3 at R = 1
    assert pxap_from_histograms(fg_hist, bg_hist) == pytest.approx(100 * (0.5 + 0.5 * 2 / 3))
    # an ignored pixel leaves both histograms
    ignore = np.array([[False, True], [False, False]])
    fg_hist, bg_hist = pxap_histograms(map01, fg, ignore, thr)
    assert bg_hist.tolist() == [1, 0, 0, 0, 0, 0]
    assert pxap_from_histograms(fg_hist, bg_hist) == pytest.approx(100.0)


def test_pxap_through_metric_with_low_res_masks():
    # 4x4 map; masks given at 2x2 and resized (nearest) to 4x4
    m = torch.tensor([[1.0, 1.0, 0.2, 0.2], [1.0, 1.0, 0.2, 0.2],
                      [0.6, 0.6, 0.0, 0.0], [0.6, 0.6, 0.0, 0.0]])
    gt_mask = torch.tensor([[1, 0], [0, 0]], dtype=torch.uint8)
    ignore = torch.tensor([[0, 0], [1, 0]], dtype=torch.uint8)
    s = _sample(m, gt_mask=gt_mask, ignore_mask=ignore)
    res = _run(WSOLMetric(), [s])
    assert res['wsol/PxAP'] == pytest.approx(100.0)       # FG = the top values, 0.6 ignored
    s = _sample(m, gt_mask=gt_mask)
    assert _run(WSOLMetric(), [s])['wsol/PxAP'] == pytest.approx(100.0)
    s = _sample(m, gt_mask=torch.tensor([[0, 0], [1, 0]], dtype=torch.uint8))
    # FG = the 0.6 quadrant, ranked after four 1.0 BG pixels: P = 4/8 at R = 1
    assert _run(WSOLMetric(), [s])['wsol/PxAP'] == pytest.approx(50.0)


def _random_samples(n, seed=0):
    rng = np.random.default_rng(seed)
    samples = []
    for i in range(n):
        grid = torch.from_numpy(rng.random((6, 6))).float()
        pred_map = torch.nn.functional.interpolate(grid[None, None], size=(48, 48),
                                                   mode='bicubic')[0, 0]
        x0, y0 = rng.integers(0, 60, 2)
        boxes = [[x0, y0, rng.integers(x0 + 5, 97), rng.integers(y0 + 5, 97)]]
        samples.append(_sample(pred_map, boxes, label=int(rng.integers(K)),
                               top=tuple(rng.permutation(K)[:5]), img_id=f'im{i}',
                               ori_shape=(96, 96),
                               gt_mask=torch.from_numpy(rng.random((12, 12)) > 0.6)))
    return samples


def test_two_processes_equal_one():
    samples = _random_samples(40)
    one = WSOLMetric()
    one.process({}, samples)
    want = one.compute_metrics(one.results)
    parts = [WSOLMetric(), WSOLMetric()]
    parts[0].process({}, samples[0::2])                  # DistributedSampler's interleave
    parts[1].process({}, samples[1::2])
    # what collect_results does: pickle each rank's list, re-interleave in data order
    rank0, rank1 = (pickle.loads(pickle.dumps(p.results)) for p in parts)
    gathered = [r for pair in zip(rank0, rank1) for r in pair]
    assert parts[0].compute_metrics(gathered) == want
    assert parts[1].compute_metrics(rank1 + rank0) == want
    assert 0 < want['MaxBoxAcc'] < 100 and 0 < want['PxAP'] < 100   # prefix added by evaluate
    assert want != parts[0].compute_metrics(rank0)      # the halves differ from the whole


def test_records_are_small_and_hold_no_map():
    metric = WSOLMetric()
    metric.process({}, _random_samples(3))
    for record in metric.results:
        assert all(np.asarray(v).size <= 2 * 102 for v in record.values())
    no_mask = dict(metric.results[0])
    no_mask.pop('pxap')
    assert record_nbytes(no_mask) < 400        # boxes + classes, 100 thresholds x 3 IoUs
    assert record_nbytes(metric.results[0]) < 1400


def test_nonfinite_map_policy_names_the_image():
    m = _plateau_map(32, (4, 4, 27, 27), (10, 10, 20, 20))
    m[0, 0] = float('nan')
    bad = _sample(m, [[0, 0, 0, 0]], img_id='cub/bird_1.jpg')
    res = _run(WSOLMetric(), [bad])            # evaluated as a zero map: box (0, 0, 0, 0)
    assert res['wsol/MaxBoxAcc'] == 100
    with pytest.raises(ValueError, match='cub/bird_1.jpg'):
        WSOLMetric(nonfinite='error').process({}, [bad])


@pytest.mark.parametrize('change,match', [
    (dict(pred_map=torch.zeros(2, 8, 8)), '2-D'),
    (dict(ori_gt_bboxes=np.array([[5., 5., 2., 9.]])), 'x1 >= x0'),
    (dict(ori_gt_bboxes=np.zeros((0, 4))), 'no GT box'),
    (dict(pred_score=torch.full((K,), float('nan'))), 'pred_score'),
])
def test_bad_input_errors_name_the_image(change, match):
    s = _sample(torch.rand(8, 8, generator=torch.Generator().manual_seed(0)), [[1, 1, 5, 5]],
                img_id='n01/x.JPEG')
    s.update(change)
    with pytest.raises(ValueError, match=match) as err:
        WSOLMetric().process({}, [s])
    assert 'n01/x.JPEG' in str(err.value)


def test_images_without_box_skip_policy():
    m = _plateau_map(32, (4, 4, 27, 27), (10, 10, 20, 20))
    good = _sample(m, [[4, 4, 28, 28]], label=0)
    nobox = _sample(m, None, label=0, img_id='nobox')
    res = _run(WSOLMetric(no_box='skip'), [good, nobox])
    assert res['wsol/MaxBoxAcc'] == 100          # over the one image with a box
    assert res['wsol/Top1Cls'] == 100            # over both images
    with pytest.raises(ValueError, match='nobox'):
        WSOLMetric().process({}, [nobox])


def test_box_source_selects_the_field():
    m = _plateau_map(32, (4, 4, 27, 27), (10, 10, 20, 20))
    s = _sample(m, [[10, 10, 21, 21]], ori_shape=(32, 32))      # ori boxes: the inner core
    s['gt_bboxes'] = torch.tensor([[4., 4., 28., 28.]])          # input boxes: the plateau
    best = {src: _run(WSOLMetric(box_source=src), [dict(s)])['wsol/best_thr']
            for src in ('auto', 'ori', 'input')}
    assert best == {'auto': 0.5, 'ori': 0.5, 'input': 0.0}


@pytest.mark.parametrize('kwargs,match', [
    (dict(loc_iou=0.6), r'loc_iou=0.6 must be one of iou_thrs=\(0.3, 0.5, 0.7\)'),
    (dict(no_box='ignore'), "no_box must be 'error' or 'skip', got 'ignore'"),
    (dict(nonfinite='nan'), "nonfinite must be 'zero' or 'error', got 'nan'"),
    (dict(box_source='gt'), "box_source must be 'auto', 'ori' or 'input', got 'gt'"),
    (dict(fixed_thrs=(0.255, )), r'CAM threshold 0.255 is not one of'),
])
def test_constructor_rejects_bad_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        WSOLMetric(**kwargs)


def test_empty_results_and_missing_pred_map_are_clear_errors():
    with pytest.raises(ValueError, match='WSOLMetric: no results to evaluate'):
        WSOLMetric().evaluate(0)
    s = _sample(torch.rand(8, 8, generator=torch.Generator().manual_seed(1)), [[1, 1, 5, 5]],
                img_id='n02/no_map.JPEG')
    del s['pred_map']
    with pytest.raises(ValueError, match=r'image n02/no_map.JPEG: the sample has no '
                                         'pred_map'):
        WSOLMetric().process({}, [s])


def test_mask_only_images_count_for_pxap_not_for_boxes():
    """An image with a mask and no box (no_box='error' default): PxAP only."""
    m = _plateau_map(32, (4, 4, 27, 27), (10, 10, 20, 20))
    # FG = the inner core (the 1.0 values): PxAP 100
    mask = np.zeros((32, 32), np.uint8)
    mask[10:21, 10:21] = 1
    alone = _run(WSOLMetric(), [_sample(m, None, gt_mask=mask, img_id='mask_only')])
    assert alone == {'wsol/Top1Cls': 100.0, 'wsol/Top5Cls': 100.0, 'wsol/PxAP': 100.0}
    # FG = the plateau ring only: 121 core BG pixels rank above the 455 FG ones,
    # then the 448 BG pixels at 0 come last: AP = precision 455 / 576 at recall 1
    ring = np.zeros((32, 32), np.uint8)
    ring[4:28, 4:28] = 1
    ring[10:21, 10:21] = 0
    res = _run(WSOLMetric(), [_sample(m, None, gt_mask=ring)])
    assert res['wsol/PxAP'] == pytest.approx(100 * 455 / 576)
    # mixed with a boxed image: the box metrics are that image's alone
    boxed = _sample(m, [[10, 10, 21, 21]], img_id='boxed')
    mixed = _run(WSOLMetric(), [boxed, _sample(m, None, gt_mask=mask, img_id='mask_only')])
    only_boxed = _run(WSOLMetric(), [dict(boxed)])
    assert {k: v for k, v in mixed.items() if 'Cls' not in k and 'PxAP' not in k} == \
        {k: v for k, v in only_boxed.items() if 'Cls' not in k}
    assert mixed['wsol/PxAP'] == 100.0 and 'wsol/PxAP' not in only_boxed


def _oracle_box_accuracies(maps, gt_boxes, interval):
    """MaxBoxAcc / MaxBoxAccV2 / best_thr, one cv2.threshold + findContours per CAM
    threshold (wsolevaluation's loop), for maps already in [0, 1] at evaluation size."""
    thresholds = np.arange(0, 1, interval)
    iou_thrs = (0.3, 0.5, 0.7)

    def iou(a, b):
        iw = min(a[2], b[2]) - max(a[0], b[0]) + 1
        ih = min(a[3], b[3]) - max(a[1], b[1]) + 1
        inter = max(0, iw) * max(0, ih)
        area = lambda r: (r[2] - r[0] + 1) * (r[3] - r[1] + 1)  # noqa: E731
        return inter / (area(a) + area(b) - inter)

    largest = np.zeros((len(maps), len(thresholds)))
    every = np.zeros((len(maps), len(thresholds)))
    for i, (m, gts) in enumerate(zip(maps, gt_boxes)):
        h, w = m.shape
        map8 = (m * 255).astype(np.uint8)
        for j, t in enumerate(thresholds):
            _, mask = cv2.threshold(map8, int(t * map8.max()), 255, cv2.THRESH_BINARY)
            contours = cv2.findContours(mask, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)[0]
            boxes = [(x, y, min(x + bw, w - 1), min(y + bh, h - 1))
                     for x, y, bw, bh in map(cv2.boundingRect, contours)] or [(0, 0, 0, 0)]
            big = (max(range(len(contours)), key=lambda k: cv2.contourArea(contours[k]))
                   if contours else 0)
            largest[i, j] = max(iou(boxes[big], g) for g in gts)
            every[i, j] = max(iou(b, g) for b in boxes for g in gts)
    acc = 100 * (largest >= 0.5).mean(0)
    v2 = [100 * (every >= t).mean(0).max() for t in iou_thrs]
    return acc.max(), float(np.mean(v2)), float(thresholds[int(acc.argmax())])


def test_interval_0001_through_the_metric_equals_per_threshold_opencv():
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[0:40, 0:40]
    maps, boxes, samples = [], [], []
    for i in range(8):
        cy, cx = rng.uniform(12, 28, 2)
        sy, sx = rng.uniform(3, 9, 2)
        m = np.exp(-(yy - cy)**2 / (2 * sy * sy) - (xx - cx)**2 / (2 * sx * sx))
        m = ((m - m.min()) / (m.max() - m.min())).astype(np.float32)  # [0, 1]: kept as is
        # the GT box: the region above a random level, so that IoU 0.7 holds only in a
        # band of CAM thresholds around it, and the bands of the images overlap partly
        ys, xs = np.nonzero(m > rng.uniform(0.2, 0.7))
        b = [[xs.min(), ys.min(), xs.max(), ys.max()]]
        if i % 4 == 3:  # and a small box off the blob that no threshold finds
            b = [[0, 0, 3, 3]]
        maps.append(m)
        boxes.append(b)
        samples.append(_sample(torch.from_numpy(m), b, img_id=f'im{i}'))
    res = _run(WSOLMetric(cam_curve_interval=0.001), samples)
    acc, v2, best = _oracle_box_accuracies(maps, boxes, 0.001)
    assert res['wsol/MaxBoxAcc'] == pytest.approx(acc)
    assert res['wsol/MaxBoxAccV2'] == pytest.approx(v2)
    assert res['wsol/best_thr'] == pytest.approx(best)
    # a case that tells thresholds apart: the best threshold is off the 0.01 grid
    # (0.357 here), so a metric on coarser thresholds reports another one
    assert 0 < acc < 100 and abs(best * 100 - round(best * 100)) > 1e-6, best
