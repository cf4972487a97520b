"""PseudoLabelSampler: Otsu region, top/bottom candidates, balance, randomness, seeds."""
import math

import numpy as np
import pytest
from mmengine.runner import set_random_seed

from tedloc_mm.datasets import PseudoLabelSampler
from tedloc_mm.registry import TRANSFORMS


def disk_cam(size=224, center=(120, 90), radius=50, noise=0.05, seed=0):
    """High activation inside a disk, low outside, plus small noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    inside = (yy - center[0])**2 + (xx - center[1])**2 <= radius**2
    cam = np.where(inside, 0.8, 0.1) + noise * rng.random((size, size))
    return cam.astype(np.float32), inside


def run(sampler, cam, img_id='im.jpg'):
    h, w = cam.shape
    return sampler(dict(img=np.zeros((h, w, 3), np.uint8), cam=cam,
                        img_id=img_id))['pseudo_label_map']


def block_mean(cam, stride):
    h, w = cam.shape[0] // stride, cam.shape[1] // stride
    return cam[:h * stride, :w * stride].reshape(h, stride, w, stride).mean(axis=(1, 3))


@pytest.mark.parametrize('stride,shape', [(4, (224, 224)), (16, (224, 224)), (8, (96, 64))])
def test_output_grid_is_input_over_stride(stride, shape):
    cam = np.random.default_rng(1).random(shape).astype(np.float32)
    out = run(PseudoLabelSampler(grid_stride=stride), cam)
    assert out.shape == (shape[0] // stride, shape[1] // stride) and out.dtype == np.int64
    out = run(PseudoLabelSampler(grid_size=(7, 5)), cam)
    assert out.shape == (7, 5)


def test_fg_inside_otsu_region_bg_outside_and_among_top_bottom_candidates():
    cam, inside = disk_cam()
    stride, n_pos, n_neg, k = 4, 40, 60, 10
    sampler = PseudoLabelSampler(grid_stride=stride, num_fg_candidates=n_pos,
                                 num_bg_candidates=n_neg, num_samples=k)
    grid = block_mean(cam, stride)  # area interpolation == block means here
    # independent FG region: grid cells whose block is mostly inside the disk
    region = block_mean(inside.astype(np.float32), stride) > 0.5
    # Otsu must separate the two modes exactly (cells on the rim have mixed means)
    pure = (block_mean(inside.astype(np.float32), stride) % 1) == 0
    fg_vals = np.sort(grid[region])[::-1]
    bg_vals = np.sort(grid[~region])
    for _ in range(5):
        out = run(sampler, cam)
        fg, bg = out == 1, out == 0
        assert fg.sum() == k and bg.sum() == k  # balanced
        assert (out == -1).sum() == out.size - 2 * k
        assert region[fg & pure].all() and not region[bg & pure].any()
        assert (grid[fg] >= fg_vals[n_pos - 1] - 1e-6).all()  # among the top n+
        assert (grid[bg] <= bg_vals[n_neg - 1] + 1e-6).all()  # among the bottom n-
        assert grid[fg].min() > grid[bg].max()


def test_candidates_are_exactly_the_top_and_bottom_cells():
    grid = np.array([[0.9, 0.8, 0.1], [0.7, 0.05, 0.2], [0.0, 0.85, 0.15]], np.float32)
    fg, bg = PseudoLabelSampler(num_fg_candidates=2, num_bg_candidates=3).candidates(grid)
    assert sorted(fg.tolist()) == [0, 7]  # 0.9, 0.85
    # the three lowest cells: 0.0 (6), 0.05 (4), 0.1 (2)
    assert sorted(bg.tolist()) == [2, 4, 6]
    # fractions: half of the FG region {0.9, 0.8, 0.7, 0.85} -> 2; all BG cells
    fg, bg = PseudoLabelSampler(num_fg_candidates=0.5, num_bg_candidates=1.0).candidates(grid)
    assert sorted(fg.tolist()) == [0, 7] and sorted(bg.tolist()) == [2, 4, 5, 6, 8]


def brute_force_otsu_region(grid):
    """Otsu by exhaustive search over split points of the 256-level quantised grid."""
    v = grid.ravel().astype(np.float64)
    q = np.rint((v - v.min()) / (v.max() - v.min()) * 255)
    best, best_t = -1.0, None
    for t in np.unique(q)[:-1]:
        a, b = q[q <= t], q[q > t]
        var = a.size * b.size * (a.mean() - b.mean())**2
        if var > best + 1e-9:
            best, best_t = var, t
    return (q > best_t).reshape(grid.shape)


@pytest.mark.parametrize('seed', range(4))
def test_otsu_region_equals_exhaustive_search(seed):
    rng = np.random.default_rng(seed)
    grid = np.concatenate([rng.normal(0.2, 0.1, 50), rng.normal(0.7, 0.15, 30),
                           rng.random(20)]).astype(np.float32).reshape(10, 10)
    region = PseudoLabelSampler.otsu_region(grid.ravel(), grid.min(), grid.max())
    np.testing.assert_array_equal(region.reshape(10, 10), brute_force_otsu_region(grid))


def test_balance_is_capped_by_the_smaller_candidate_set():
    cam, _ = disk_cam()
    out = run(PseudoLabelSampler(grid_stride=4, num_fg_candidates=3, num_bg_candidates=50,
                                 num_samples=10), cam)
    assert (out == 1).sum() == 3 and (out == 0).sum() == 3
    out = run(PseudoLabelSampler(grid_stride=4, num_fg_candidates=0.5,
                                 num_bg_candidates=0.5, num_samples=0.25), cam)
    n_fg = ((block_mean(cam, 4) > 0.45).sum())
    n_bg = block_mean(cam, 4).size - n_fg
    k = math.ceil(0.25 * min(math.ceil(0.5 * n_fg), math.ceil(0.5 * n_bg)))
    assert (out == 1).sum() == k and (out == 0).sum() == k


def test_draws_differ_across_calls_and_repeat_under_the_same_seed():
    cam, _ = disk_cam()
    sampler = TRANSFORMS.build(dict(type='PseudoLabelSampler', grid_stride=4,
                                    num_fg_candidates=100, num_bg_candidates=100,
                                    num_samples=8))
    set_random_seed(123)
    first = [run(sampler, cam) for _ in range(3)]
    assert not np.array_equal(first[0], first[1])
    assert not np.array_equal(first[1], first[2])
    set_random_seed(123)
    again = [run(sampler, cam) for _ in range(3)]
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    set_random_seed(124)
    assert not np.array_equal(run(sampler, cam), first[0])


@pytest.mark.parametrize('value', [0.0, 0.37, 1.0])
def test_constant_cam_samples_nothing(value):
    cam = np.full((64, 64), value, np.float32)
    out = run(PseudoLabelSampler(grid_stride=4, num_samples=5), cam)
    assert out.shape == (16, 16) and (out == -1).all()


def test_non_finite_cam_names_the_image():
    cam = np.zeros((32, 32), np.float32)
    cam[3, 3] = np.inf
    with pytest.raises(ValueError, match="'bird/1.jpg'"):
        run(PseudoLabelSampler(grid_stride=4), cam, 'bird/1.jpg')


def test_bad_arguments():
    with pytest.raises(ValueError):
        PseudoLabelSampler(num_fg_candidates=1.5)
    with pytest.raises(ValueError):
        PseudoLabelSampler(num_samples=-1)
    with pytest.raises(ValueError):
        PseudoLabelSampler(grid_stride=0)


def test_tied_background_cells_are_drawn_from_the_whole_tied_set():
    """A Grad-CAM-like map: one blob, zeros elsewhere (hundreds of ties at the cut).

    The bottom-n- candidates must not always be the first tied cells in raster order
    (the top rows): over repeated calls, BG samples reach the bottom of the image too.
    """
    set_random_seed(0)
    cam = np.zeros((64, 64), np.float32)
    cam[24:40, 24:40] = 1.0  # the FG blob in the middle
    sampler = PseudoLabelSampler(grid_stride=4, num_fg_candidates=1.0,
                                 num_bg_candidates=0.25, num_samples=8)
    rows = []
    for _ in range(30):
        label = run(sampler, cam)
        assert (label == 0).sum() == 8 and (label == 1).sum() == 8
        rows.extend(np.nonzero(label == 0)[0].tolist())
    rows = np.array(rows)
    # 16x16 grid; 240 zero cells, a quarter (60) are candidates each call. Raster order
    # would confine them to rows 0-3; random tie-breaking spreads them over all rows.
    assert rows.max() >= 12 and (rows >= 8).mean() > 0.3
