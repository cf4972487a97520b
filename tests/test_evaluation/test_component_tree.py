"""The component sweep behind the fast box evaluation (evaluation/component_tree.py):
each rule it relies on, as the module computes it (its window tables, its sweeps, its
choice of the largest contour), checked against OpenCV, and its per-level IoUs against
findContours at every distinct level of many maps."""
import cv2
import numpy as np
import pytest

from tedloc_mm.evaluation import box_iou
from tedloc_mm.evaluation.box_protocol import quantize_map
from tedloc_mm.evaluation.component_tree import (_FG_AREA2, _FG_EULER4, _HOLE_AREA2,
                                                 _HOLE_EULER4, _NEIGHBOURS,
                                                 _pixels_by_value, _sweep,
                                                 component_levels)

from protocol_oracle import random_case


def random_masks(rng, count):
    """Binary uint8 masks: speckle and blurred blobs, 4..30 px a side."""
    for i in range(count):
        h, w = (int(v) for v in rng.integers(4, 31, 2))
        if i % 2:
            yield (cv2.GaussianBlur(rng.random((h, w)), (5, 5), 0)
                   > rng.uniform(0.4, 0.6)).astype(np.uint8)
        else:
            yield (rng.random((h, w)) < rng.uniform(0.3, 0.8)).astype(np.uint8)


def windows(mask):
    """Per 2x2 window of the zero-padded mask: pixel count and diagonal-pair flag."""
    pad = np.pad(mask.astype(np.int64), 1)
    a, b, c, d = pad[:-1, :-1], pad[:-1, 1:], pad[1:, :-1], pad[1:, 1:]
    k = a + b + c + d
    return k, (k == 2) & (a == d)


def quad_area(mask):
    k, _ = windows(mask)
    return (k == 4).sum() + 0.5 * (k == 3).sum()


def hole_area(mask):
    k, _ = windows(mask)
    return 0.5 * (k == 1).sum() + (k >= 2).sum()


def euler(mask, eight_connected):
    k, diagonal = windows(mask)
    sign = -1 if eight_connected else 1
    return ((k == 1).sum() - (k == 3).sum() + sign * 2 * diagonal.sum()) / 4


def table_sum(mask, table):
    """What the sweep accumulates for the pixel set ``mask`` with one of the module's
    tables, adding the pixels in raster order: each pixel's code holds the neighbours
    already in, i.e. those before it in raster order (W, N, NW, NE). (The sum does
    not depend on the order: test_window_tables_sum_to_the_window_counts.)"""
    pad = np.pad(mask.astype(np.int64), 1)
    bit = {d: 1 << i for i, d in enumerate(_NEIGHBOURS)}
    code = (pad[1:-1, :-2] * bit[(0, -1)] + pad[:-2, 1:-1] * bit[(-1, 0)]
            + pad[:-2, :-2] * bit[(-1, -1)] + pad[:-2, 2:] * bit[(-1, 1)])
    return int(table[code][mask > 0].sum())


def components(mask):
    """8-connected foreground labels and 4-connected background labels of a mask,
    the background label of the outside (the border ring) first."""
    _, fg = cv2.connectedComponents(mask, connectivity=8)
    _, bg = cv2.connectedComponents(np.pad(1 - mask, 1, constant_values=1), connectivity=4)
    return fg, bg[1:-1, 1:-1], bg[0, 0]


def sweep_counts(mask):
    """The sweeps' own counts for the binary ``mask`` (one level, ``map8 >= 1``):
    (components, holes = components - Euler number, holes found by the background
    sweep)."""
    map8 = np.ascontiguousarray(mask, dtype=np.uint8)
    h, w = map8.shape
    levels = np.array([1], np.int64)
    gt = np.zeros((1, 4), np.int64)
    index, xs, ys, start = _pixels_by_value(map8)
    none = np.zeros(1, np.bool_)
    fg = _sweep(h, w, levels, index, xs, ys, start, gt, True, 0, _FG_AREA2, _FG_EULER4, none)
    bg = _sweep(h, w, levels, index, xs, ys, start, gt, False, 0, _HOLE_AREA2, _HOLE_EULER4,
                none)
    return int(fg[2][0]), int(fg[3][0]), int(bg[3][0])


# ---------------------------------------------------------------- the rules
def test_outer_area_is_window_sum_plus_hole_areas():
    """The module's area tables against OpenCV: contourArea(outer) = the component's
    _FG_AREA2 sum / 2 + its hole contours' areas; contourArea(hole) = the hole's
    _HOLE_AREA2 sum / 2, where it holds no island (its _HOLE_EULER4 sum is 4)."""
    rng = np.random.default_rng(0)
    checked_outer = checked_holes = 0
    for mask in random_masks(rng, 600):
        fg, bg, outside = components(mask)
        contours, hierarchy = cv2.findContours(mask, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
        for i, contour in enumerate(contours):
            if hierarchy[0][i][3] != -1:
                continue                           # a hole contour: seen with its owner
            x, y = contour[0][0]
            comp = fg == fg[y, x]
            grown = cv2.dilate(comp.astype(np.uint8), np.array([[0, 1, 0], [1, 1, 1],
                                                                 [0, 1, 0]], np.uint8))
            hole_ids = set(np.unique(bg[(grown > 0) & (mask == 0)])) - {outside}
            holes = [bg == h for h in hole_ids]
            if any(table_sum(h, _HOLE_EULER4) != 4 for h in holes):
                continue                           # an island inside: areas nest deeper
            hole_areas2 = [table_sum(h, _HOLE_AREA2) for h in holes]
            want = cv2.contourArea(contour)
            assert (table_sum(comp, _FG_AREA2) + sum(hole_areas2)) / 2 == want
            checked_outer += 1
            # the hole contours of this component, matched by area
            hole_contours = []
            child = hierarchy[0][i][2]
            while child != -1:
                hole_contours.append(cv2.contourArea(contours[child]))
                child = hierarchy[0][child][0]
            assert sorted(hole_contours) == sorted(a / 2 for a in hole_areas2)
            checked_holes += len(holes)
    assert checked_outer > 2000 and checked_holes > 400


def test_holes_are_components_minus_euler_number():
    """The module's Euler table and its two sweeps against OpenCV: components (8-conn.)
    minus the _FG_EULER4 sum / 4 is the number of holes, which the background sweep
    counts too; findContours(RETR_TREE) lists one contour per component and hole."""
    rng = np.random.default_rng(1)
    with_holes = 0
    for mask in random_masks(rng, 500):
        fg, bg, outside = components(mask)
        n_comp = fg.max()
        n_holes = len(set(np.unique(bg[mask == 0])) - {outside})
        assert table_sum(mask, _FG_EULER4) == 4 * (n_comp - n_holes)
        assert sweep_counts(mask) == (n_comp, n_holes, n_holes)
        contours = cv2.findContours(mask, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)[0]
        assert len(contours) == n_comp + n_holes
        with_holes += n_holes > 0
    assert with_holes > 100


def test_ties_for_the_largest_contour_go_to_the_last_component_in_raster_order():
    """Among outer contours of equal area (no holes) RETR_TREE lists the components by
    first pixel, last first, and max() takes the first listed: component_levels'
    largest-contour box must be OpenCV's. Masks of equal squares (all tied) and of
    random shapes (ties now and then), each component's box tried as the GT."""
    rng = np.random.default_rng(2)
    ties = 0
    for trial in range(300):
        if trial % 2:
            mask = next(random_masks(rng, 1))
        else:                                    # 2-4 separate 3 x 3 squares
            mask = np.zeros((24, 24), np.uint8)
            for _ in range(int(rng.integers(2, 5))):
                y, x = (int(v) for v in rng.integers(0, 21, 2))
                if not mask[max(0, y - 1):y + 4, max(0, x - 1):x + 4].any():
                    mask[y:y + 3, x:x + 3] = 1
        contours, hierarchy = cv2.findContours(mask, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)
        if len(contours) < 2 or (hierarchy[0][:, 3] != -1).any():
            continue
        h, w = mask.shape
        boxes = np.array([cv2.boundingRect(c) for c in contours], np.int64)
        boxes[:, 2] = np.minimum(boxes[:, 0] + boxes[:, 2], w - 1)
        boxes[:, 3] = np.minimum(boxes[:, 1] + boxes[:, 3], h - 1)
        areas = [cv2.contourArea(c) for c in contours]
        largest = max(range(len(contours)), key=lambda j: areas[j])
        ties += areas.count(areas[largest]) > 1
        for gt in boxes:
            iou_all, iou_largest, to_trace = component_levels(mask * 255, np.array([255]),
                                                              gt[None])
            assert not to_trace[0]
            assert iou_largest[0] == box_iou(boxes[largest:largest + 1], gt[None])[0, 0]
    assert ties > 60


@pytest.mark.parametrize('table,weight', [
    (_FG_AREA2, lambda m: 2 * quad_area(m)),
    (_FG_EULER4, lambda m: 4 * euler(m, eight_connected=True)),
    (_HOLE_AREA2, lambda m: 2 * hole_area(m)),
    (_HOLE_EULER4, lambda m: 4 * euler(m, eight_connected=False))])
def test_window_tables_sum_to_the_window_counts(table, weight):
    """Adding the pixels one by one in any order, the table steps sum to the
    window count of the final set."""
    rng = np.random.default_rng(3)
    for mask in random_masks(rng, 60):
        h, w = mask.shape
        grown = np.zeros((h + 2, w + 2), np.uint8)
        total = 0
        for y, x in rng.permutation(np.argwhere(mask)):
            code = sum(int(grown[y + 1 + dy, x + 1 + dx]) << bit
                       for bit, (dy, dx) in enumerate(_NEIGHBOURS))
            total += int(table[code])
            grown[y + 1, x + 1] = 1
        assert total == weight(mask)


# ---------------------------------------------------------------- the sweep
@pytest.mark.parametrize('kind', ['blob', 'random', 'noisy', 'rings'])
def test_every_level_equals_find_contours(kind):
    """At every distinct level of the map (not only the thresholds' levels): the
    best IoU over all contour boxes and the largest contour's IoU equal OpenCV's;
    only a few levels are left to trace."""
    rng = np.random.default_rng(4)
    levels_seen = traced = 0
    for i in range(12):
        m, gt = random_case(rng, kind, 96 if i else 224)
        map8 = quantize_map(m)
        h, w = map8.shape
        levels = np.unique(map8[map8 > 0])
        iou_all, iou_largest, to_trace = component_levels(map8, levels, gt)
        for k, level in enumerate(levels):
            mask = (map8 >= level).astype(np.uint8)
            contours = cv2.findContours(mask, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)[0]
            boxes = np.array([cv2.boundingRect(c) for c in contours])
            boxes[:, 2] = np.minimum(boxes[:, 0] + boxes[:, 2], w - 1)
            boxes[:, 3] = np.minimum(boxes[:, 1] + boxes[:, 3], h - 1)
            largest = max(range(len(contours)), key=lambda j: cv2.contourArea(contours[j]))
            ious = box_iou(boxes, gt).max(1)
            levels_seen += 1
            if to_trace[k]:
                traced += 1
                continue
            assert iou_all[k] == ious.max(), (kind, i, level)
            assert iou_largest[k] == ious[largest], (kind, i, level)
    assert traced <= 0.01 * levels_seen, (traced, levels_seen)


def test_thin_ring_with_island_outranks_a_square_with_more_pixels():
    """contourArea, not the pixel count, picks the largest contour: a one-pixel ring
    around a 20 x 20 hole (84 pixels, area 21 * 21 = 441, plus an island inside)
    beats a solid 15 x 15 square (225 pixels, area 14 * 14 = 196), and its own hole
    contour (439)."""
    map8 = np.zeros((64, 64), np.uint8)
    map8[5:27, 5:27] = 255                 # ring: outer 22 x 22 pixels ...
    map8[6:26, 6:26] = 0                   # ... around a 20 x 20 hole
    map8[12:16, 12:16] = 255               # island 4 x 4 inside the hole
    map8[40:55, 40:55] = 255               # square 15 x 15
    areas = sorted(cv2.contourArea(c) for c in cv2.findContours(
        (map8 > 0).astype(np.uint8), cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)[0])
    # island, square, the ring's hole contour, the ring's outer contour
    assert areas == [9, 196, 439, 441]
    ring, square, island = [5, 5, 27, 27], [40, 40, 55, 55], [12, 12, 16, 16]
    # the island's box (5 x 5 pixels, +1 convention) inside the ring's (23 x 23)
    for gt, want_largest in ((ring, 1.0), (square, 0.0), (island, 25 / 529)):
        iou_all, iou_largest, to_trace = component_levels(map8, np.array([255]),
                                                          np.array([gt]))
        assert not to_trace[0]
        assert iou_all[0] == 1.0           # every contour's box is some GT's exactly
        assert iou_largest[0] == pytest.approx(want_largest)


def test_one_pixel_ring_with_a_tail_takes_the_outer_contour_at_equal_area():
    """A diagonal one-pixel ring has no 2x2 window with 3 pixels: its outer contour
    and its hole contour have the same area (32), but different boxes when a tail
    sticks out. max() takes the outer one, listed first (the hole's parent)."""
    map8 = np.zeros((20, 20), np.uint8)
    for t in range(4):                     # diamond of radius 4 around (8, 8)
        for y, x in ((4 + t, 8 + t), (8 + t, 12 - t), (12 - t, 8 - t), (8 - t, 4 + t)):
            map8[y, x] = 255
    for t in range(1, 6):                  # a diagonal tail from the right vertex
        map8[8 + t, 12 + t] = 255
    contours, hierarchy = cv2.findContours((map8 > 0).astype(np.uint8), cv2.RETR_TREE,
                                           cv2.CHAIN_APPROX_SIMPLE)
    assert [cv2.contourArea(c) for c in contours] == [32, 32]
    assert list(hierarchy[0][:, 3]) == [-1, 0]
    outer = [4, 4, 18, 14]                 # boundingRect (4, 4, 14, 10) -> x + w, y + h
    hole = [4, 4, 13, 13]
    for gt, want in ((outer, 1.0), (hole, 100 / 165)):
        iou_all, iou_largest, to_trace = component_levels(map8, np.array([255]),
                                                          np.array([gt]))
        assert not to_trace[0] and iou_all[0] == 1.0
        assert iou_largest[0] == pytest.approx(want)


def test_warm_up_compiles_every_entry_point_once(repo_root, python_exe):
    """In a fresh process (nothing compiled yet), warm_up's tiny map reaches every
    function called from Python; a second call does nothing."""
    import subprocess
    code = ('from tedloc_mm.evaluation import component_tree as c; c.warm_up(); '
            "print([n for n in ('_pixels_by_value', '_sweep', '_largest_with_holes') "
            'if not getattr(c, n).signatures], c.warm_up())')
    out = subprocess.run([python_exe, '-c', code], cwd=repo_root, capture_output=True,
                         text=True, timeout=300, check=True).stdout.strip().splitlines()[-1]
    assert out == '[] 0.0'
