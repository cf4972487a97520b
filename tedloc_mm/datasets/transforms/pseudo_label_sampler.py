"""PseudoLabelSampler: FG / BG pixel pseudo-labels from a CAM (paper, Appendix A)."""
import math
from typing import Optional, Sequence, Union

import cv2
import numpy as np
from mmcv.transforms import BaseTransform
from skimage.filters import threshold_otsu

from tedloc_mm.registry import TRANSFORMS
from tedloc_mm.structures import PSEUDO_BG, PSEUDO_FG, PSEUDO_IGNORE

Number = Union[int, float]


def _count(n: Number, size: int, name: str) -> int:
    """An int is a count (capped at ``size``), a float in (0, 1] a fraction of ``size``."""
    if isinstance(n, bool):
        raise TypeError(f'{name} must be an int or a float, got {n!r}')
    if isinstance(n, float):
        if not 0.0 < n <= 1.0:
            raise ValueError(f'{name}={n}: a float is a fraction in (0, 1]')
        return min(size, max(1, math.ceil(n * size))) if size else 0
    if n < 0:
        raise ValueError(f'{name}={n} must be >= 0')
    return min(int(n), size)


@TRANSFORMS.register_module()
class PseudoLabelSampler(BaseTransform):
    """Sample balanced FG / BG pixel pseudo-labels from the CAM on a sampling grid.

    The sampling grid divides the input image (after all geometric transforms) into
    ``(H // grid_stride, W // grid_stride)`` cells (or ``grid_size`` cells): cell
    (i, j) stands for the input pixel at its centre, x = (j + 1/2) * W / w',
    y = (i + 1/2) * H / h'. ``grid_stride`` is the sampling density in input pixels
    (1 = every input pixel). The model maps these input-pixel locations onto its own
    output grid (:meth:`tedloc_mm.models.heads.PatchMILHead.pseudo_label_points`), so
    any grid trains correctly; with the sampling grid equal to the decoder's (the
    configs state one ``pseudo_label_stride`` for both) each sampled cell is exactly
    one decoder cell, as in the paper.

    Steps, on each call:

    1. The CAM (``results['cam']``, float (H, W), aligned with the input image by the
       geometric transforms) is resized to the sampling grid with **area**
       interpolation, i.e. each cell gets the mean CAM over the input pixels it
       covers.
    2. Otsu's threshold ``t`` (``skimage.filters.threshold_otsu``) on that grid,
       quantised to 256 levels (see :meth:`otsu_region`), gives the FG region
       ``{C > t}``.
    3. FG candidates: the ``num_fg_candidates`` (n+) cells of highest CAM inside the
       region; BG candidates: the ``num_bg_candidates`` (n-) cells of lowest CAM
       outside it. Ties at the cut are broken at random on each call.
    4. A fresh random subset of ``k = min(num_samples, #FG candidates, #BG candidates)``
       cells is drawn from each (:meth:`draw`), without replacement (balanced: k FG and
       k BG). The draw uses NumPy's global generator, which MMEngine seeds
       (``randomness.seed`` and per-worker seeds), so runs are reproducible and draws
       differ between calls.

    Extending: a subclass (or a new mode) changes one step by overriding
    :meth:`cam_on_grid` (step 1), :meth:`candidates` (steps 2-3) or :meth:`draw`
    (step 4); the output format stays the same.

    Counts (n+, n-, ``num_samples``) are ints, or floats in (0, 1]: fractions of the
    FG region's size (n+), of the outside region's size (n-), or of the smaller
    candidate set (``num_samples``).

    Degenerate CAMs: a constant CAM (including all zeros, how the CAM store keeps a
    CAM without any activation) has no FG / BG separation; then, and whenever one of
    the two candidate sets is empty, no cell is sampled (all -1), the pixel losses get
    no term from this image, and nothing is NaN. A CAM with non-finite values raises
    ``ValueError`` naming the image id.

    Required keys: ``img``, ``cam``. Added key: ``pseudo_label_map`` int64 (h', w') on
    the sampling grid: 1 FG, 0 BG, -1 not sampled (see ``tedloc_mm/structures.py``).
    With ``keep_fg_region=True`` also ``pseudo_fg_region`` bool (h', w'), the Otsu
    region of step 2 (all False for a constant CAM), for inspection
    (``tools/analysis_tools/browse_pseudo_labels.py``); the model does not read it.

    Args:
        grid_stride (int): input pixels per sampling cell along each side. Default 4
            (the paper's decoder grid, 56 x 56 at 224 px); our configs set it from
            their ``pseudo_label_stride``, the value their decoder's ``out_stride``
            takes too.
        grid_size (tuple, optional): (h', w') cells; overrides ``grid_stride``.
        num_fg_candidates (int | float): n+. Default 0.5 (top half of the FG region).
        num_bg_candidates (int | float): n-. Default 0.5.
        num_samples (int | float): k per class per call. Default 16.
        cam_key (str): where the CAM is. Default ``'cam'``.
        keep_fg_region (bool): also store the Otsu region. Default False.
    """

    def __init__(self,
                 grid_stride: int = 4,
                 grid_size: Optional[Sequence[int]] = None,
                 num_fg_candidates: Number = 0.5,
                 num_bg_candidates: Number = 0.5,
                 num_samples: Number = 16,
                 cam_key: str = 'cam',
                 keep_fg_region: bool = False):
        if isinstance(grid_stride, bool) or not isinstance(grid_stride, int) or grid_stride < 1:
            raise ValueError(f'grid_stride must be a positive int, got {grid_stride!r}')
        if grid_size is not None and (len(grid_size) != 2 or min(grid_size) < 1):
            raise ValueError(f'grid_size must be (h, w) of positive ints, got {grid_size!r}')
        for name, n in (('num_fg_candidates', num_fg_candidates),
                        ('num_bg_candidates', num_bg_candidates),
                        ('num_samples', num_samples)):
            _count(n, 1, name)  # validates the type / range early
        self.grid_stride = grid_stride
        self.grid_size = tuple(int(v) for v in grid_size) if grid_size is not None else None
        self.num_fg_candidates = num_fg_candidates
        self.num_bg_candidates = num_bg_candidates
        self.num_samples = num_samples
        self.cam_key = cam_key
        self.keep_fg_region = keep_fg_region

    def grid_shape(self, img_shape) -> tuple:
        """(h', w') of the sampling grid for an input of ``img_shape`` (H, W, ...)."""
        if self.grid_size is not None:
            return self.grid_size
        return img_shape[0] // self.grid_stride, img_shape[1] // self.grid_stride

    @staticmethod
    def otsu_region(values: np.ndarray, lo: float, hi: float) -> np.ndarray:
        """Boolean FG mask ``values > t`` of Otsu's threshold t, exact on 256 levels.

        The values are min-max quantised to the integers 0..255 (the precision of the
        CAM store) and Otsu runs on those integer levels. Why not
        ``threshold_otsu`` on the floats directly: it returns the centre of a
        256-bin histogram bin, so ``values > t`` wrongly puts into FG the values of the
        threshold bin that lie above its centre (measured: on the grid
        [0, .05, .1, .15, .2, .7, .8, .85, .9] it returns 0.1986 and 0.2 lands in FG).
        On integer input skimage's bins are the integers themselves, so ``q > t`` is
        exactly the split that maximises the between-class variance.
        """
        q = np.rint((values - lo) * (255.0 / (hi - lo))).astype(np.uint8)
        if q.min() == q.max():
            return np.zeros(values.shape, bool)
        return q > threshold_otsu(q)

    def fg_region(self, cam_grid: np.ndarray) -> Optional[np.ndarray]:
        """The flat Otsu FG region of a CAM on the sampling grid; None when constant."""
        flat = cam_grid.ravel()
        lo, hi = float(flat.min()), float(flat.max())
        if hi - lo <= 1e-6 * max(1.0, abs(hi)):
            return None  # constant CAM: no FG / BG separation
        return self.otsu_region(flat, lo, hi)

    def candidates(self, cam_grid: np.ndarray, fg_region: Optional[np.ndarray] = None):
        """Flat indices of the FG and BG candidates of a CAM on the sampling grid
        (``fg_region``: its :meth:`fg_region`, when already computed)."""
        flat = cam_grid.ravel()
        empty = np.zeros(0, np.int64)
        if fg_region is None:
            fg_region = self.fg_region(cam_grid)
        if fg_region is None:
            return empty, empty
        fg_idx, bg_idx = np.flatnonzero(fg_region), np.flatnonzero(~fg_region)
        n_fg = _count(self.num_fg_candidates, fg_idx.size, 'num_fg_candidates')
        n_bg = _count(self.num_bg_candidates, bg_idx.size, 'num_bg_candidates')
        # Ties at the cut are broken at random (a fresh draw per call). Why: CAMs are
        # stored as uint8 and Grad-CAM's ReLU zeroes large areas, so the bottom n- cells
        # are often hundreds of tied zeros; a raster-order tie-break would always take
        # the top rows of the image as background, and the decoder, whose tokens carry
        # position embeddings, learns "top = background" (seen on the synthetic set).
        fg = fg_idx[np.lexsort((np.random.random(fg_idx.size), -flat[fg_idx]))[:n_fg]]
        bg = bg_idx[np.lexsort((np.random.random(bg_idx.size), flat[bg_idx]))[:n_bg]]
        return fg, bg

    def cam_on_grid(self, cam: np.ndarray, grid_hw: tuple) -> np.ndarray:
        """Step 1: the CAM (H, W) as the mean over each cell of the grid (h', w')."""
        gh, gw = grid_hw
        if cam.shape != (gh, gw):
            cam = cv2.resize(cam, (gw, gh), interpolation=cv2.INTER_AREA)
        return cam

    def draw(self, fg: np.ndarray, bg: np.ndarray, num_cells: int) -> np.ndarray:
        """Step 4: a balanced random draw from the candidates -> flat labels (h' w',)."""
        k = _count(self.num_samples, min(fg.size, bg.size), 'num_samples')
        label = np.full(num_cells, PSEUDO_IGNORE, np.int64)
        if k > 0:
            label[np.random.choice(fg, k, replace=False)] = PSEUDO_FG
            label[np.random.choice(bg, k, replace=False)] = PSEUDO_BG
        return label

    def transform(self, results: dict) -> dict:
        cam = np.asarray(results[self.cam_key], np.float32)
        if not np.isfinite(cam).all():
            raise ValueError(f'CAM of {results.get("img_id")!r} has non-finite values')
        gh, gw = self.grid_shape(results['img'].shape[:2])
        if gh < 1 or gw < 1:
            raise ValueError(f'sampling grid {(gh, gw)} is empty for the input '
                             f'{results["img"].shape[:2]} of {results.get("img_id")!r} '
                             f'and grid_stride={self.grid_stride}')
        cam = self.cam_on_grid(cam, (gh, gw))
        region = self.fg_region(cam)
        fg, bg = self.candidates(cam, region)
        results['pseudo_label_map'] = self.draw(fg, bg, gh * gw).reshape(gh, gw)
        if self.keep_fg_region:
            results['pseudo_fg_region'] = (np.zeros((gh, gw), bool) if region is None
                                           else region.reshape(gh, gw))
        return results

    def __repr__(self):
        return (f'{self.__class__.__name__}(grid_stride={self.grid_stride}, '
                f'grid_size={self.grid_size}, num_fg_candidates={self.num_fg_candidates}, '
                f'num_bg_candidates={self.num_bg_candidates}, '
                f'num_samples={self.num_samples}, cam_key={self.cam_key!r}, '
                f'keep_fg_region={self.keep_fg_region})')
