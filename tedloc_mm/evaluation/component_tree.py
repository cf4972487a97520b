"""The protocol's contour boxes at every binarisation of an 8-bit map, without tracing.

``findContours`` on the mask ``map8 >= v`` returns one *outer* contour per
8-connected foreground component and one *hole* contour per 4-connected background
component that does not reach the image border (OpenCV pads the image with zeros).
Everything the protocol reads from them follows from the components:

* an outer contour passes through the extreme pixels of its component: its
  ``boundingRect`` is the component's pixel bounding box (+1 on x1, y1);
* a hole contour runs through the foreground pixels 4-adjacent to the hole: its box
  is the hole's pixel bounding box grown by one pixel on each side;
* ``contourArea`` of an outer contour is ``Q4 + Q3 / 2`` of its component plus the
  areas of its holes' contours, where ``Qk`` counts the 2x2 pixel windows holding
  exactly ``k`` of the component's pixels; a hole contour's area is
  ``Q1 / 2 + Q2 + Q3 + Q4`` of the hole plus the outer areas of the components
  inside it (islands);
* the number of holes is ``C - E``, components minus the Euler number
  ``E = (Q1 - Q3 - 2 QD) / 4`` (8-connectivity; ``QD``: windows with a diagonal
  pair; Gray, 1971); a hole holds no island when its own 4-connected Euler number
  ``(Q1 - Q3 + 2 QD) / 4`` is 1;
* among outer contours of equal area, ``max(contours, key=cv2.contourArea)`` takes
  the first in ``RETR_TREE`` order; without holes that order lists the components
  by their first pixel in raster order, the last one first. A hole contour is
  never the one taken: its area is at most its component's outer area, and at
  equal areas (a one-pixel-wide ring) the outer contour, its parent, comes first.

The components of all levels come from one union-find sweep over the pixels sorted
by value, from the highest level down; the window sums are updated when a pixel
joins, from 256-entry tables indexed by which of its 8 neighbours are already in.
Levels with holes get the holes from a second, shorter sweep over the background
(from the lowest level up, the image border being one extra component,
*outside*); where such a level also has several components, each hole is matched
to its enclosing component (and each island to its hole) through the pixel above
its first pixel, and the areas are summed bottom-up. Each rule above is checked
against OpenCV in ``tests/test_evaluation/test_component_tree.py``. What is left, a tie for the
largest area at a level with holes (``RETR_TREE`` order with nesting), is flagged
for the caller to trace with OpenCV (4 of about 39,000 levels in that test).

Why compiled code (numba): the sweep is a per-pixel loop with data-dependent
control flow, which NumPy cannot vectorise, and no maintained library gives the
per-level component boxes and areas (scikit-image's ``max_tree`` gives the tree
but not the per-node boxes, whose accumulation is again a per-pixel loop). One
sweep costs about 15 ns per pixel here, where tracing costs about 1.5 ns per pixel
per threshold; ``benchmarks/metric_speed.py`` measures the whole.
"""
import time
from typing import Tuple

import numba
import numpy as np

_NUM_VALUES = 256

#: neighbour order of the 8-bit presence code: W, E, N, S, NW, NE, SW, SE
_NEIGHBOURS = ((0, -1), (0, 1), (-1, 0), (1, 0), (-1, -1), (-1, 1), (1, -1), (1, 1))


def _window_table(weight) -> np.ndarray:
    """int32 (256,): how ``sum over 2x2 windows of weight(window)`` changes when a
    pixel joins a set, for each presence code of its 8 neighbours (bit order
    :data:`_NEIGHBOURS`). ``weight`` maps a 2x2 bool window to an int."""
    table = np.zeros(256, np.int32)
    for code in range(256):
        patch = np.zeros((3, 3), bool)
        for bit, (dy, dx) in enumerate(_NEIGHBOURS):
            patch[1 + dy, 1 + dx] = bool(code >> bit & 1)
        for y0 in (0, 1):              # the four 2x2 windows that contain the centre
            for x0 in (0, 1):
                before = patch[y0:y0 + 2, x0:x0 + 2].copy()
                after = before.copy()
                after[1 - y0, 1 - x0] = True
                table[code] += int(weight(after)) - int(weight(before))
    return table


def _window_counts(window) -> Tuple[int, int]:
    """(pixels in the 2x2 window, 1 if they are exactly a diagonal pair else 0)."""
    k = int(window.sum())
    return k, int(k == 2 and window[0, 0] == window[1, 1])


def _fg_area2(w):    # 2 x contourArea of an outer contour: 2 Q4 + Q3
    k, _ = _window_counts(w)
    return 2 * (k == 4) + (k == 3)


def _fg_euler4(w):   # 4 x Euler number, 8-connected: Q1 - Q3 - 2 QD
    k, diagonal = _window_counts(w)
    return (k == 1) - (k == 3) - 2 * diagonal


def _hole_area2(w):  # 2 x contourArea of a hole's contour: Q1 + 2 (Q2 + Q3 + Q4)
    k, _ = _window_counts(w)
    return (k == 1) + 2 * (k >= 2)


def _hole_euler4(w):  # 4 x Euler number, 4-connected: Q1 - Q3 + 2 QD
    k, diagonal = _window_counts(w)
    return (k == 1) - (k == 3) + 2 * diagonal


_FG_AREA2, _FG_EULER4 = _window_table(_fg_area2), _window_table(_fg_euler4)
_HOLE_AREA2, _HOLE_EULER4 = _window_table(_hole_area2), _window_table(_hole_euler4)


@numba.njit(cache=True, nogil=True)
def _root(parent, i):
    """Root of ``i`` with path halving."""
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


@numba.njit(cache=True, nogil=True)
def _best_iou(x0, y0, x1, y1, gt):
    """max over GT boxes of the +1-convention IoU, computed as :func:`.box_iou` does."""
    best = 0.0
    area_a = (x1 - x0 + 1) * (y1 - y0 + 1)
    for g in range(gt.shape[0]):
        iw = min(x1, gt[g, 2]) - max(x0, gt[g, 0]) + 1
        ih = min(y1, gt[g, 3]) - max(y0, gt[g, 1]) + 1
        inter = iw * ih if iw > 0 and ih > 0 else 0
        union = area_a + (gt[g, 2] - gt[g, 0] + 1) * (gt[g, 3] - gt[g, 1] + 1) - inter
        iou = inter / union if union > 0 else 0.0
        if iou > best:
            best = iou
    return best


@numba.njit(cache=True, nogil=True)
def _pixels_by_value(map8):
    """Counting sort of the pixels by value, in the padded layout (one ring of
    padding, row length W + 2): the pixels of value v are ``index[start[v]:start[v +
    1]]``, raster order within a value, their coordinates in ``xs``, ``ys``."""
    height, width = map8.shape
    count = np.zeros(_NUM_VALUES + 1, np.int64)
    for y in range(height):
        for x in range(width):
            count[map8[y, x] + 1] += 1
    start = np.cumsum(count)
    fill = start[:-1].copy()
    n = height * width
    index = np.empty(n, np.int32)
    xs = np.empty(n, np.int32)
    ys = np.empty(n, np.int32)
    for y in range(height):
        for x in range(width):
            v = map8[y, x]
            j = fill[v]
            index[j] = (y + 1) * (width + 2) + x + 1
            xs[j] = x
            ys[j] = y
            fill[v] = j + 1
    return index, xs, ys, start


@numba.njit(cache=True, nogil=True)
def _merge(parent, stats, a, b):
    """Union of the components rooted at a != b (by size); returns the new root.
    ``stats`` rows: size, x0, y0, x1, y1, 2 x area, first pixel (padded raster
    index), 4 x Euler number."""
    if stats[a, 0] < stats[b, 0]:
        a, b = b, a
    parent[b] = a
    stats[a, 0] += stats[b, 0]
    stats[a, 1] = min(stats[a, 1], stats[b, 1])
    stats[a, 2] = min(stats[a, 2], stats[b, 2])
    stats[a, 3] = max(stats[a, 3], stats[b, 3])
    stats[a, 4] = max(stats[a, 4], stats[b, 4])
    stats[a, 5] += stats[b, 5]
    stats[a, 6] = min(stats[a, 6], stats[b, 6])
    stats[a, 7] += stats[b, 7]
    return a


@numba.njit(cache=True, nogil=True)
def _grow(buffer, size):
    """``buffer`` with room for at least ``size`` rows (doubling)."""
    if size <= buffer.shape[0]:
        return buffer
    bigger = np.empty((max(size, 2 * buffer.shape[0]),) + buffer.shape[1:], buffer.dtype)
    bigger[:buffer.shape[0]] = buffer
    return bigger


@numba.njit(cache=True, nogil=True)
def _sweep(height, width, levels, index, xs, ys, start, gt, foreground, last,
           area2_step, euler4_step, snapshot):
    """One union-find sweep over the pixels by value.

    ``foreground=True``: the components of ``map8 >= v`` (8-connected), from the
    highest level down. ``False``: the background ``map8 < v`` (4-connected) for the
    levels ``levels[:last + 1]``, from the lowest up; the padding ring is background
    from the start, all one component (id 0, *outside*); the other components are
    the holes.

    Every pixel keeps the component id it joined with (``label``), ids are merged in
    a union-find over ids, so a pixel whose neighbours all carry one id needs a
    single ``find``. ``area2_step`` / ``euler4_step`` (indexed by which of the 8
    neighbours are already in) update the components' window sums.

    Returns (per level, L = len(levels); levels not swept keep zeros):
        iou (L,): best IoU of a contour box with the GT (holes: the hole's box
            grown by one pixel).
        iou_largest (L,): foreground: IoU of the box of the largest component by
            ``contourArea`` of its outer contour, exact where the level has no hole.
        count (L,): number of components (holes: outside excluded).
        holes (L,): number of holes (foreground: components - Euler number).
        rows (R, 4) int64, with ``rows[row_begin[k]:row_end[k]]`` for level k: one
            row per component (id, 2 x area, first pixel, 4 x Euler number), for the
            background at every swept level, for the foreground where the level
            has holes and several components.
        row_iou (R,): the box IoU of each row.
        label: (padded H x W) the id each pixel joined with.
        snap_root, snap_begin: at the levels k flagged in ``snapshot`` (foreground:
            also where rows are kept), the root of every id c then existing is
            ``snap_root[snap_begin[k] + c]``.
    """
    row = width + 2
    n_pad = (height + 2) * row
    n_levels = len(levels)
    label = np.full(n_pad, -1, np.int32)
    n_max = height * width + 1
    parent = np.empty(n_max, np.int32)
    snap_root = np.empty(64, np.int32)
    snap_begin = np.zeros(n_levels, np.int64)
    n_snap = 0
    stats = np.empty((n_max, 8), np.int32)
    roots = np.empty(n_max, np.int32)
    n_roots = 0
    n_ids = 0
    if not foreground:                            # the padding ring: component 0
        for x in range(row):
            label[x] = label[n_pad - row + x] = 0
        for y in range(height + 2):
            label[y * row] = label[y * row + row - 1] = 0
        parent[0] = 0
        stats[0, :] = 0
        stats[0, 0] = n_pad                       # never the smaller one in a union
        n_ids = 1
    iou = np.zeros(n_levels)
    iou_largest = np.zeros(n_levels)
    count = np.zeros(n_levels, np.int64)
    holes = np.zeros(n_levels, np.int64)
    rows = np.empty((64, 4), np.int64)
    row_iou = np.empty(64)
    row_begin = np.zeros(n_levels, np.int64)
    row_end = np.zeros(n_levels, np.int64)
    n_rows = 0
    total_euler4 = 0
    if foreground:
        j = len(index)
        k_first, k_stop, k_step = n_levels - 1, -1, -1
    else:
        j = 0
        k_first, k_stop, k_step = 0, last + 1, 1
    for k in range(k_first, k_stop, k_step):
        stop = start[levels[k]]
        while j != stop:
            if foreground:
                j -= 1
            p = index[j]
            l0, l1, l2, l3 = label[p - 1], label[p + 1], label[p - row], label[p + row]
            l4, l5 = label[p - row - 1], label[p - row + 1]
            l6, l7 = label[p + row - 1], label[p + row + 1]
            # branch-free: which neighbours are in, and the largest id among them
            code = ((l0 >= 0) | (l1 >= 0) << 1 | (l2 >= 0) << 2 | (l3 >= 0) << 3
                    | (l4 >= 0) << 4 | (l5 >= 0) << 5 | (l6 >= 0) << 6 | (l7 >= 0) << 7)
            if foreground:
                top = max(max(max(l0, l1), max(l2, l3)), max(max(l4, l5), max(l6, l7)))
                low = min(min(min(np.uint32(l0), np.uint32(l1)),
                              min(np.uint32(l2), np.uint32(l3))),
                          min(min(np.uint32(l4), np.uint32(l5)),
                              min(np.uint32(l6), np.uint32(l7))))
            else:                                 # 4-connectivity
                top = max(max(l0, l1), max(l2, l3))
                low = min(min(np.uint32(l0), np.uint32(l1)),
                          min(np.uint32(l2), np.uint32(l3)))
            total_euler4 += euler4_step[code]
            if top < 0:                           # isolated: a new component
                c = n_ids
                n_ids += 1
                label[p] = parent[c] = c
                stats[c, 0] = 1
                stats[c, 1] = stats[c, 3] = xs[j]
                stats[c, 2] = stats[c, 4] = ys[j]
                stats[c, 5] = area2_step[code]
                stats[c, 6] = p
                stats[c, 7] = euler4_step[code]
                roots[n_roots] = c
                n_roots += 1
            else:
                rp = _root(parent, top)
                if low != top:                    # rare: another id among them
                    neighbours = (l0, l1, l2, l3, l4, l5, l6, l7)
                    for t in range(8 if foreground else 4):
                        lq = neighbours[t]
                        if lq >= 0 and lq != top:
                            rq = _root(parent, lq)
                            if rq != rp:
                                rp = _merge(parent, stats, rp, rq)
                label[p] = rp
                stats[rp, 0] += 1
                stats[rp, 1] = min(stats[rp, 1], xs[j])
                stats[rp, 2] = min(stats[rp, 2], ys[j])
                stats[rp, 3] = max(stats[rp, 3], xs[j])
                stats[rp, 4] = max(stats[rp, 4], ys[j])
                stats[rp, 5] += area2_step[code]
                stats[rp, 6] = min(stats[rp, 6], p)
                if not foreground:               # holes: islands inside?
                    stats[rp, 7] += euler4_step[code]
            if not foreground:
                j += 1
        kept = 0
        for i in range(n_roots):                  # the components alive at this level
            r = roots[i]
            if parent[r] == r and (foreground or r != 0):
                roots[kept] = r
                kept += 1
        n_roots = kept
        count[k] = kept
        holes[k] = kept - total_euler4 // 4 if foreground else kept
        # foreground: keep the rows where holes add to their components' areas
        record = holes[k] > 0 and (kept > 1 or not foreground)
        if record:
            rows = _grow(rows, n_rows + kept)
            row_iou = _grow(row_iou, n_rows + kept)
        row_begin[k] = n_rows
        best, largest, chosen = 0.0, -1, -1
        for i in range(kept):
            r = roots[i]
            if foreground:
                box_iou = _best_iou(stats[r, 1], stats[r, 2],
                                    min(stats[r, 3] + 1, width - 1),
                                    min(stats[r, 4] + 1, height - 1), gt)
                # the largest area; among equal areas the first in RETR_TREE order,
                # which (without holes) lists the components by first pixel, last first
                if stats[r, 5] > largest or (stats[r, 5] == largest
                                             and stats[r, 6] > stats[chosen, 6]):
                    largest, chosen, iou_largest[k] = stats[r, 5], r, box_iou
            else:                                 # a hole's contour box: grown by one
                box_iou = _best_iou(stats[r, 1] - 1, stats[r, 2] - 1,
                                    min(stats[r, 3] + 2, width - 1),
                                    min(stats[r, 4] + 2, height - 1), gt)
            best = max(best, box_iou)
            if record:
                rows[n_rows, 0] = r
                rows[n_rows, 1] = stats[r, 5]
                rows[n_rows, 2] = stats[r, 6]
                rows[n_rows, 3] = stats[r, 7]
                row_iou[n_rows] = box_iou
                n_rows += 1
        row_end[k] = n_rows
        iou[k] = best
        if snapshot[k] or (foreground and record):  # every id's root at this level
            snap_root = _grow(snap_root, n_snap + n_ids)
            snap_begin[k] = n_snap
            for c in range(n_ids):
                snap_root[n_snap + c] = _root(parent, c)
            n_snap += n_ids
    return (iou, iou_largest, count, holes, rows[:n_rows], row_begin, row_end,
            row_iou[:n_rows], label, snap_root[:n_snap], snap_begin)


@numba.njit(cache=True, nogil=True)
def _largest_with_holes(width, need, fg, bg, iou_largest, to_trace):
    """The largest outer contour at levels with holes and several components.

    ``contourArea`` nests: an outer contour's is its component's window sum plus
    the areas of its holes' contours, and a hole contour's is the hole's window sum
    plus the outer areas of the components inside it (islands). Who encloses whom
    is read from the pixel above each first pixel: it lies outside the component
    (hole), on the border of the enclosing hole (component). Children come later
    in raster order than what encloses them, so one pass by decreasing first pixel
    sums the areas bottom-up. Ties (``RETR_TREE`` order with nesting) are flagged in
    ``to_trace``.

    ``fg`` / ``bg``: the outputs of :func:`_sweep` for the foreground / background.
    """
    fg_rows, fg_begin, fg_end, fg_iou, fg_label, fg_snap, fg_snap_begin = fg[4:]
    bg_rows, bg_begin, bg_end, _, bg_label, bg_snap, bg_snap_begin = bg[4:]
    row = width + 2
    fg_slot = np.zeros(fg_label.shape[0], np.int64)
    bg_slot = np.zeros(bg_label.shape[0], np.int64)
    for k in need:
        fb, fe, hb, he = fg_begin[k], fg_end[k], bg_begin[k], bg_end[k]
        n_fg, n_all = fe - fb, fe - fb + he - hb
        for i in range(fb, fe):
            fg_slot[fg_rows[i, 0]] = i - fb
        for h in range(hb, he):
            bg_slot[bg_rows[h, 0]] = h - hb
        # entities 0..n_fg-1: components, n_fg..: holes; their areas and encloser
        area2 = np.empty(n_all, np.int64)
        first = np.empty(n_all, np.int64)
        encloser = np.full(n_all, -1, np.int64)
        for e in range(n_all):
            if e < n_fg:
                r = fg_rows[fb + e]
                anchor = r[2] - row
                owner = bg_snap[bg_snap_begin[k] + bg_label[anchor]]
                if owner != 0:                      # inside a hole, not outside
                    i = bg_slot[owner]
                    if i < he - hb and bg_rows[hb + i, 0] == owner:
                        encloser[e] = n_fg + i
                    else:                           # cannot happen; trust OpenCV
                        to_trace[k] = True
            else:
                r = bg_rows[hb + e - n_fg]
                anchor = r[2] - row
                owner = fg_snap[fg_snap_begin[k] + fg_label[anchor]]
                i = fg_slot[owner]
                if i < n_fg and fg_rows[fb + i, 0] == owner:
                    encloser[e] = i
                else:
                    to_trace[k] = True
            area2[e] = r[1]
            first[e] = r[2]
        if to_trace[k]:
            continue
        for e in np.argsort(-first):                # children before enclosers
            if encloser[e] >= 0:
                area2[encloser[e]] += area2[e]
        chosen = np.argmax(area2[:n_fg])
        if (area2[:n_fg] == area2[chosen]).sum() > 1:
            to_trace[k] = True                      # a tie: RETR_TREE order with nesting
        else:
            iou_largest[k] = fg_iou[fb + chosen]


def component_levels(map8: np.ndarray, levels: np.ndarray, gt_boxes: np.ndarray
                     ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Best IoUs at each binarisation ``map8 >= v`` of an 8-bit map.

    Args:
        map8: uint8 (H, W).
        levels: int (L,) strictly increasing, each in ``1 .. map8.max()`` (every mask
            non-empty).
        gt_boxes: int (G, 4) x0y0x1y1, G >= 1.

    Returns:
        (iou_all, iou_largest, to_trace), each (L,): the best IoU over all contour
        boxes (MaxBoxAccV2), the IoU of the box of the contour of largest
        ``contourArea`` (MaxBoxAcc), and the levels that the components do not
        settle (see the module docstring): there both IoUs are meaningless and the
        caller must trace the level.
    """
    map8 = np.ascontiguousarray(map8, dtype=np.uint8)
    height, width = map8.shape
    levels = np.ascontiguousarray(levels, dtype=np.int64)
    gt = np.ascontiguousarray(gt_boxes, dtype=np.int64).reshape(-1, 4)
    index, xs, ys, start = _pixels_by_value(map8)
    # the foreground sweep snapshots the levels where holes and several components
    # meet as it finds them; the background sweep is told which
    fg = _sweep(height, width, levels, index, xs, ys, start, gt, True, len(levels) - 1,
                _FG_AREA2, _FG_EULER4, np.zeros(len(levels), np.bool_))
    iou_all, iou_largest, n_comp, n_holes = fg[:4]
    to_trace = np.zeros(len(levels), bool)
    with_holes = np.flatnonzero(n_holes > 0)
    if len(with_holes):
        need = with_holes[n_comp[with_holes] > 1]
        snapshot = np.zeros(len(levels), np.bool_)
        snapshot[need] = True
        bg = _sweep(height, width, levels, index, xs, ys, start, gt, False,
                    int(with_holes[-1]), _HOLE_AREA2, _HOLE_EULER4, snapshot)
        hole_iou, hole_count = bg[0], bg[3]
        np.maximum(iou_all, hole_iou, out=iou_all)
        # two independent counts of the holes; should they differ, trust OpenCV
        to_trace |= hole_count != n_holes
        need = with_holes[(n_comp[with_holes] > 1) & ~to_trace[with_holes]]
        if len(need):
            _largest_with_holes(width, need, fg, bg, iou_largest, to_trace)
    return iou_all, iou_largest, to_trace


_warm = False


def warm_up() -> float:
    """Compile (or load from numba's cache) every function of the sweep, once per
    process; returns the seconds it took (0 after the first call). A tiny map with
    a ring, an island and a second component takes every code path."""
    global _warm
    if _warm:
        return 0.0
    start = time.perf_counter()
    map8 = np.zeros((12, 12), np.uint8)
    map8[1:8, 1:8] = 200
    map8[2:7, 2:7] = 0
    map8[4, 4] = 200
    map8[9:11, 9:11] = 100
    component_levels(map8, np.array([100, 200]), np.array([[0, 0, 5, 5]]))
    _warm = True
    return time.perf_counter() - start
