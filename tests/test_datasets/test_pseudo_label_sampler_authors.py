"""PseudoLabelSampler's options for the authors' sampling (TrCAM dlib/cams/tcam_seeding.py):
FG / BG candidates from the region or the whole image, the CAM-weighted FG draw (by its
frequencies over many draws), the grow kernel; counts and locations by hand on small CAMs."""
import numpy as np
import pytest

from tedloc_mm.datasets import PseudoLabelSampler
from tedloc_mm.structures import PSEUDO_BG, PSEUDO_FG, PSEUDO_IGNORE


def small_cam():
    """4 x 4: a bright 2 x 2 top-left (1.0, 0.9 / 0.8, 0.7) = the Otsu region, the other
    12 cells 0.00, 0.01, ..., 0.11 in raster order (distinct: no ties)."""
    cam = np.zeros((4, 4), np.float32)
    rest = [(r, c) for r in range(4) for c in range(4) if not (r < 2 and c < 2)]
    for i, (r, c) in enumerate(rest):
        cam[r, c] = i / 100
    cam[0, 0], cam[0, 1], cam[1, 0], cam[1, 1] = 1.0, 0.9, 0.8, 0.7
    return cam


def cells(flat_idx, w=4):
    return sorted((int(i) // w, int(i) % w) for i in flat_idx)


def test_region_and_image_sources_by_hand():
    cam = small_cam()
    ours = PseudoLabelSampler(grid_stride=1, num_fg_candidates=0.5, num_bg_candidates=0.25)
    region = ours.fg_region(cam)
    assert cells(np.flatnonzero(region)) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    fg, bg = ours.candidates(cam, region)
    # FG: ceil(0.5 * 4) = 2 brightest of the region; BG: ceil(0.25 * 12) = 3 darkest
    # outside it (0.00, 0.01, 0.02 at (0, 2), (0, 3), (1, 2))
    assert cells(fg) == [(0, 0), (0, 1)]
    assert cells(bg) == [(0, 2), (0, 3), (1, 2)]
    # the authors' BG: the darkest of the whole image, ceil(0.25 * 16) = 4
    authors = PseudoLabelSampler(grid_stride=1, num_fg_candidates=0.5,
                                 num_bg_candidates=0.25, bg_source='image')
    fg, bg = authors.candidates(cam, region)
    assert cells(fg) == [(0, 0), (0, 1)]
    assert cells(bg) == [(0, 2), (0, 3), (1, 2), (1, 3)]
    # the whole image as BG candidates includes the region (not excluded)
    _, bg = PseudoLabelSampler(grid_stride=1, num_bg_candidates=1.0,
                               bg_source='image').candidates(cam, region)
    assert bg.size == 16
    # FG from the whole image (the authors' use_roi=False): 6 brightest of all 16
    fg, _ = PseudoLabelSampler(grid_stride=1, num_fg_candidates=6,
                               fg_source='image').candidates(cam, region)
    assert cells(fg) == [(0, 0), (0, 1), (1, 0), (1, 1), (3, 2), (3, 3)]
    # from the region, 6 is capped at its 4 cells
    fg, _ = PseudoLabelSampler(grid_stride=1, num_fg_candidates=6).candidates(cam, region)
    assert fg.size == 4


def test_cam_weighted_draw_follows_the_cam():
    """FG candidates with CAM 0.1, 0.2, 0.3, 0.4 (the 4 non-zero cells, fg_source
    'image', n+ = 4); one FG cell per draw: frequencies 0.1, 0.2, 0.3, 0.4 over 20,000
    draws (binomial std <= 0.0035, tolerance 0.015). A uniform draw gives 0.25 each."""
    cam = np.zeros((4, 4), np.float32)
    spots = [(0, 0), (1, 2), (2, 1), (3, 3)]
    for (r, c), v in zip(spots, (0.1, 0.2, 0.3, 0.4)):
        cam[r, c] = v
    img = np.zeros((4, 4, 3), np.uint8)
    np.random.seed(0)
    counts = {s: 0 for s in spots}
    sampler = PseudoLabelSampler(grid_stride=1, fg_source='image', num_fg_candidates=4,
                                 num_bg_candidates=0.5, num_samples=1,
                                 fg_draw='cam_weighted')
    n = 20000
    for _ in range(n):
        out = sampler(dict(img=img, cam=cam, img_id='x'))['pseudo_label_map']
        (r,), (c,) = np.nonzero(out == PSEUDO_FG)
        counts[(r, c)] += 1
        assert (out == PSEUDO_BG).sum() == 1 and cam[out == PSEUDO_BG][0] == 0
    freq = np.array([counts[s] / n for s in spots])
    np.testing.assert_allclose(freq, [0.1, 0.2, 0.3, 0.4], atol=0.015)
    # without replacement: k = 4 draws every candidate once, whatever the weights
    fg, bg = sampler.candidates(cam)
    sampler.num_samples = 4
    label = sampler.draw(fg, bg, 16, cam.ravel())
    assert cells(np.flatnonzero(label == PSEUDO_FG)) == sorted(spots)


def test_grow_kernel_by_hand():
    """FG drawn at (2, 2), BG at (0, 0) of a 5 x 5 grid, k = 3: FG the 3 x 3 square
    rows / cols 1..3, BG rows / cols 0..1; (1, 1) is reached by both: unsampled."""
    label = np.full((5, 5), PSEUDO_IGNORE, np.int64)
    label[2, 2], label[0, 0] = PSEUDO_FG, PSEUDO_BG
    out = PseudoLabelSampler(grow_kernel=3).grow(label)
    want = np.full((5, 5), PSEUDO_IGNORE, np.int64)
    want[1:4, 1:4] = PSEUDO_FG
    want[0:2, 0:2] = PSEUDO_BG
    want[1, 1] = PSEUDO_IGNORE
    np.testing.assert_array_equal(out, want)
    assert PseudoLabelSampler().grow(label) is label  # k = 1: unchanged


def test_authors_setting_end_to_end_counts():
    """The authors' README run on a 16 x 16 CAM at full resolution: 1 FG + 1 BG cell,
    each grown to 3 x 3 (9 cells each unless clipped at the border or overlapping)."""
    rng = np.random.default_rng(0)
    cam = np.full((16, 16), 0.05, np.float32) + 0.01 * rng.random((16, 16)).astype(np.float32)
    cam[4:10, 5:11] = 0.9 + 0.05 * rng.random((6, 6))
    sampler = PseudoLabelSampler(grid_stride=1, num_fg_candidates=0.6,
                                 num_bg_candidates=0.1, bg_source='image', num_samples=1,
                                 fg_draw='cam_weighted', grow_kernel=3)
    img = np.zeros((16, 16, 3), np.uint8)
    np.random.seed(1)
    for _ in range(50):
        out = sampler(dict(img=img, cam=cam, img_id='x'))['pseudo_label_map']
        fg, bg = out == PSEUDO_FG, out == PSEUDO_BG
        assert 1 <= fg.sum() <= 9 and 1 <= bg.sum() <= 9
        # the FG seed lies in the bright block: its 3 x 3 square touches only rows
        # 3..10, cols 4..11
        rows, cols = np.nonzero(fg)
        assert rows.min() >= 3 and rows.max() <= 10 and cols.min() >= 4 and cols.max() <= 11
        assert not (cam[bg] > 0.5).all()  # BG grown from one of the 26 darkest cells


def test_bad_options():
    with pytest.raises(ValueError, match=r"fg_draw must be one of \('uniform', 'cam_weighted'\)"):
        PseudoLabelSampler(fg_draw='weighted')
    with pytest.raises(ValueError, match=r"bg_source must be one of"):
        PseudoLabelSampler(bg_source='roi')
    with pytest.raises(ValueError, match=r'grow_kernel must be an odd int >= 1, got 2'):
        PseudoLabelSampler(grow_kernel=2)
