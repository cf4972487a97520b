"""The box protocol: hand-made cases with known answers, and equality of the fast
evaluator (contour_levels) with a plain per-threshold oracle on many maps."""
import cv2
import numpy as np
import pytest

from tedloc_mm.evaluation import (boxes_at_threshold, cam_thresholds, evaluate_maps,
                                  localization_ious, normalize_map, prepare_map,
                                  rescale_boxes)
from protocol_oracle import IOUS, THR, oracle_iou, oracle_ious, random_case  # noqa: F401


# ---------------------------------------------------------------- the oracle


# ---------------------------------------------------------------- map families


@pytest.mark.parametrize('seed,kind', enumerate(['blob', 'random', 'noisy', 'levels', 'rings']))
def test_fast_evaluator_equals_oracle(seed, kind):
    """Every IoU (largest / all contours, every threshold) equals the oracle's."""
    rng = np.random.default_rng(seed)
    for i in range(60):
        size = 224 if i < 2 else int(rng.integers(40, 97))
        m, gt = random_case(rng, kind, size)
        want_l, want_a = oracle_ious(m, gt)
        got_l, got_a = localization_ious(m, gt, THR)
        assert np.array_equal(got_l, want_l), (kind, i)
        assert np.array_equal(got_a, want_a), (kind, i)


def test_fast_evaluator_equals_oracle_on_tiny_and_rectangular_maps():
    rng = np.random.default_rng(7)
    for i in range(100):
        h, w = (int(v) for v in rng.integers(1, 60, 2))
        grid = rng.random((max(1, h // 4), max(1, w // 4)))
        m = normalize_map(cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC))[0]
        x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
        gt = np.array([[x0, y0, rng.integers(x0, w + 1), rng.integers(y0, h + 1)]])
        want, got = oracle_ious(m, gt), localization_ious(m, gt, THR)
        assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1]), (h, w)


# ---------------------------------------------------------------- hand-made cases
def _rect_map(size, *rects):
    m = np.zeros((size, size))
    for x0, y0, x1, y1, value in rects:      # inclusive pixel ranges
        m[y0:y1 + 1, x0:x1 + 1] = value
    return m


def test_object_fully_found():
    m = _rect_map(224, (40, 60, 99, 139, 1.0))
    # boundingRect: x=40, w=60 -> x1 = 100; y1 = 140
    assert boxes_at_threshold(m, 0.5).tolist() == [[40, 60, 100, 140]]
    iou_l, iou_a = localization_ious(m, [[40, 60, 100, 140]], THR)
    assert (iou_l == 1).all() and (iou_a == 1).all()
    res = evaluate_maps([m], [np.array([[40, 60, 100, 140]])])
    assert res['wsol/MaxBoxAcc'] == 100 and res['wsol/MaxBoxAccV2'] == 100
    assert res['wsol/best_thr'] == 0.0


def test_nested_contours_hole_box_counts_for_v2_only():
    # a square ring: outer pixels 20..199, hole 60..159
    m = _rect_map(224, (20, 20, 199, 199, 1.0), (60, 60, 159, 159, 0.0))
    boxes = boxes_at_threshold(m, 0.5, multi_contour=True).tolist()
    # the hole's contour runs through the ring pixels around it: 59..160 -> x1 = 161
    assert sorted(boxes) == [[20, 20, 200, 200], [59, 59, 161, 161]]
    gt = [[59, 59, 161, 161]]
    iou_l, iou_a = localization_ious(m, gt, THR)
    assert (iou_a == 1).all()
    assert np.allclose(iou_l, 103**2 / 181**2)        # 0.324: the outer box
    res = evaluate_maps([m], [np.array(gt)])
    assert res['wsol/MaxBoxAcc'] == 0
    assert res['wsol/MaxBoxAccV2@0.3'] == res['wsol/MaxBoxAccV2@0.7'] == 100


def test_two_objects_v1_and_v2_differ():
    big, small = (10, 10, 109, 109, 1.0), (150, 150, 169, 169, 1.0)
    m = _rect_map(224, big, small)
    gt_small = np.array([[150, 150, 170, 170]])
    res = evaluate_maps([m], [gt_small])
    assert res['wsol/MaxBoxAcc'] == 0           # the largest contour is the big square
    assert res['wsol/MaxBoxAccV2'] == 100
    # both objects annotated: both variants find one of them
    res = evaluate_maps([m], [np.array([[10, 10, 110, 110], [150, 150, 170, 170]])])
    assert res['wsol/MaxBoxAcc'] == 100 and res['wsol/MaxBoxAccV2'] == 100


@pytest.mark.parametrize('raw', [np.zeros((32, 32)), np.full((32, 32), 3.5),
                                 np.full((32, 32), np.nan)])
def test_empty_constant_and_nan_maps_give_box_zero(raw):
    m, finite = prepare_map(raw)
    assert not m.any() and finite == bool(np.isfinite(raw).all())
    assert boxes_at_threshold(m, 0.3).tolist() == [[0, 0, 0, 0]]
    # the (0, 0, 0, 0) box has area 1 (+1 convention): IoU 1 with itself, 1/4 with a 2x2 box
    assert (localization_ious(m, [[0, 0, 0, 0]], THR)[1] == 1).all()
    assert np.allclose(localization_ious(m, [[0, 0, 1, 1]], THR)[0], 0.25)


def test_box_on_the_image_border_is_clipped():
    m = _rect_map(224, (150, 100, 223, 223, 1.0))
    assert boxes_at_threshold(m, 0.2).tolist() == [[150, 100, 223, 223]]
    iou_l, _ = localization_ious(m, [[150, 100, 223, 223]], THR)
    assert (iou_l == 1).all()


def test_truncation_of_map_and_cut():
    # plateaus 1.0 and 0.5: map8 = 255 and 127; the 0.5 plateau stays while
    # int(t * 255) <= 126, i.e. for t = 0.00 .. 0.49: 50 thresholds
    m = _rect_map(64, (0, 0, 63, 63, 0.0), (8, 8, 55, 55, 0.5), (24, 24, 39, 39, 1.0))
    iou_l, _ = localization_ious(m, [[8, 8, 56, 56]], THR)
    assert int((iou_l == 1).sum()) == 50 and (iou_l[:50] == 1).all()


@pytest.mark.parametrize('gt', [[[10, 10, 30, 30]], [[150, 160, 170, 180]]])
def test_equal_area_contours_tie_break_like_opencv(gt):
    """Two squares of equal contourArea: the largest-contour box is OpenCV's first."""
    m = _rect_map(224, (10, 10, 29, 29, 1.0), (150, 160, 169, 179, 1.0))
    want_l, want_a = oracle_ious(m, np.array(gt))
    got_l, got_a = localization_ious(m, gt, THR)
    assert np.array_equal(got_l, want_l) and np.array_equal(got_a, want_a)
    assert (got_a == 1).all() and len(set(want_l)) == 1


def test_rescale_boxes_truncates():
    got = rescale_boxes([[100, 150, 250, 299]], (300, 400), (224, 224))
    assert got.tolist() == [[56, 112, 140, 223]]   # 299 * 224 / 300 = 223.25


# ---------------------------------------------------------------- the traced fallback
def test_equal_largest_areas_among_nested_contours_are_traced(monkeypatch):
    """Two squares of equal contourArea, one holding a ring with an island: a tie
    with nesting, which the component sweep leaves to OpenCV (RETR_TREE order);
    every IoU equals the oracle's."""
    from tedloc_mm.evaluation import contour_levels
    m = _rect_map(96, (5, 5, 34, 34, 1.0), (50, 40, 79, 69, 1.0),
                  (53, 43, 76, 66, 0.0), (58, 48, 71, 61, 1.0))
    traced = []
    original = contour_levels._trace_level

    def spy(map8, level, gt_boxes):
        traced.append(level)
        return original(map8, level, gt_boxes)

    monkeypatch.setattr(contour_levels, '_trace_level', spy)
    for gt in ([[5, 5, 35, 35]], [[50, 40, 80, 70]], [[58, 48, 72, 62]]):
        want_l, want_a = oracle_ious(m, np.array(gt))
        got_l, got_a = localization_ious(m, gt, THR)
        assert np.array_equal(got_l, want_l) and np.array_equal(got_a, want_a)
    assert traced == [255] * 3                   # the one tied mask, once per call


def test_fast_evaluator_equals_oracle_at_1000_thresholds():
    """interval 0.001: many thresholds share a mask (step 1 of the fast path)."""
    rng = np.random.default_rng(5)
    thr = cam_thresholds(0.001)
    for kind in ('blob', 'levels'):
        m, gt = random_case(rng, kind, 48)
        h, w = m.shape
        map8 = (m * 255).astype(np.uint8)
        want_a = []
        for t in thr:
            mask = (map8 > int(t * map8.max())).astype(np.uint8)
            contours = cv2.findContours(mask, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)[0]
            boxes = [(x, y, min(x + bw, w - 1), min(y + bh, h - 1))
                     for x, y, bw, bh in map(cv2.boundingRect, contours)] or [(0, 0, 0, 0)]
            want_a.append(max(oracle_iou(b, g) for b in boxes for g in gt))
        got_l, got_a = localization_ious(m, gt, thr)
        assert np.array_equal(got_a, np.array(want_a)), kind
        # the largest contour's IoU at a coarser grid equals the 0.01 oracle's
        assert np.array_equal(got_l[::10], oracle_ious(m, gt)[0]), kind
