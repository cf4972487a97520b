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
FG_SOURCES = ('region', 'image')
BG_SOURCES = ('outside_region', 'image')
FG_DRAWS = ('uniform', 'cam_weighted')


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

    The authors' sampling (TrCAM, ``dlib/cams/tcam_seeding.py`` at commit c4685e3,
    the run of its README.md:94-154) as options: ``fg_draw='cam_weighted'`` (FG cells
    drawn with probability proportional to their CAM value, ``_SFG`` :531-540),
    ``bg_source='image'`` (BG candidates the lowest cells of the whole image, the Otsu
    region not excluded: ``_SBG`` :555-575, called without the region at :486),
    ``fg_source='image'`` (their ``use_roi=False``, :510-512; with ``'region'``, as
    their README run, the top cells of the Otsu region, :505-509), ``grow_kernel``
    (each drawn cell grown to a k x k square, cells grown into both FG and BG left
    unsampled: :197-200, :239-250) and ``grid_stride=1`` (full resolution). Their
    README run: ``num_fg_candidates=0.6`` (``--sl_tc_max_p``), ``num_bg_candidates=0.1``
    (``--sl_tc_min_p``) with ``bg_source='image'``, ``num_samples=1``
    (``--sl_tc_max 1 --sl_tc_min 1``), ``fg_draw='cam_weighted'``, ``grow_kernel=3``,
    ``grid_stride=1``. Differences that stay: their fractions round down
    (``int(max_p * n)``, :514, so a 1-cell region gives no FG), ours up (at least
    one); their region is ``255 * cam >= t`` on the floored CAM (:339-345, :422-430),
    ours ``> t`` on the min-max quantised one (:meth:`otsu_region`); their BG draw is
    uniform (``_OneSample`` passes ``SEED_UNIFORM`` to ``_SBG``, :450-451), as ours;
    their FG and BG counts are separate, ours balanced (``k`` each).

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
        fg_source (str): ``'region'`` (default): n+ is taken among the Otsu region's
            cells; ``'image'``: among all cells.
        bg_source (str): ``'outside_region'`` (default): n- among the cells outside
            the region (paper App. A: "excluding any pixels that are within the FG
            regions"); ``'image'``: among all cells (the authors' code).
        fg_draw (str): ``'uniform'`` (default) or ``'cam_weighted'``: FG cells drawn
            without replacement with probability proportional to their CAM value
            (clipped at 0, + 1e-8 as the authors add). The BG draw is uniform.
        grow_kernel (int): odd k >= 1; k > 1 grows each drawn FG / BG cell to the
            k x k square around it (clipped at the border); a cell grown into both is
            not sampled. Default 1 (no growth).
    """

    def __init__(self,
                 grid_stride: int = 4,
                 grid_size: Optional[Sequence[int]] = None,
                 num_fg_candidates: Number = 0.5,
                 num_bg_candidates: Number = 0.5,
                 num_samples: Number = 16,
                 cam_key: str = 'cam',
                 keep_fg_region: bool = False,
                 fg_source: str = 'region',
                 bg_source: str = 'outside_region',
                 fg_draw: str = 'uniform',
                 grow_kernel: int = 1):
        if isinstance(grid_stride, bool) or not isinstance(grid_stride, int) or grid_stride < 1:
            raise ValueError(f'grid_stride must be a positive int, got {grid_stride!r}')
        if grid_size is not None and (len(grid_size) != 2 or min(grid_size) < 1):
            raise ValueError(f'grid_size must be (h, w) of positive ints, got {grid_size!r}')
        for name, n in (('num_fg_candidates', num_fg_candidates),
                        ('num_bg_candidates', num_bg_candidates),
                        ('num_samples', num_samples)):
            _count(n, 1, name)  # validates the type / range early
        for name, value, allowed in (('fg_source', fg_source, FG_SOURCES),
                                     ('bg_source', bg_source, BG_SOURCES),
                                     ('fg_draw', fg_draw, FG_DRAWS)):
            if value not in allowed:
                raise ValueError(f'{name} must be one of {allowed}, got {value!r}')
        if (isinstance(grow_kernel, bool) or not isinstance(grow_kernel, int)
                or grow_kernel < 1 or grow_kernel % 2 == 0):
            raise ValueError(f'grow_kernel must be an odd int >= 1, got {grow_kernel!r}')
        self.fg_source, self.bg_source = fg_source, bg_source
        self.fg_draw, self.grow_kernel = fg_draw, grow_kernel
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
        everything = np.arange(flat.size)
        fg_idx = everything if self.fg_source == 'image' else np.flatnonzero(fg_region)
        bg_idx = everything if self.bg_source == 'image' else np.flatnonzero(~fg_region)
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

    def draw(self, fg: np.ndarray, bg: np.ndarray, num_cells: int,
             cam_flat: Optional[np.ndarray] = None) -> np.ndarray:
        """Step 4: a balanced random draw from the candidates -> flat labels (h' w',).

        ``cam_flat``: the flat CAM on the grid, needed by ``fg_draw='cam_weighted'``.
        A cell drawn as both FG and BG (possible with ``bg_source='image'``) is BG."""
        k = _count(self.num_samples, min(fg.size, bg.size), 'num_samples')
        label = np.full(num_cells, PSEUDO_IGNORE, np.int64)
        if k > 0:
            p = None
            if self.fg_draw == 'cam_weighted':
                if cam_flat is None:
                    raise ValueError("fg_draw='cam_weighted' needs the CAM (cam_flat)")
                w = np.clip(cam_flat[fg].astype(np.float64), 0.0, None) + 1e-8
                p = w / w.sum()
            label[np.random.choice(fg, k, replace=False, p=p)] = PSEUDO_FG
            label[np.random.choice(bg, k, replace=False)] = PSEUDO_BG
        return label

    def grow(self, label: np.ndarray) -> np.ndarray:
        """``grow_kernel``: each FG / BG cell of ``label`` (h', w') grown to the k x k
        square around it; cells reached by both are -1 (the authors' dilation of the
        FG and BG seed maps, then their overlap removed)."""
        if self.grow_kernel == 1:
            return label
        kernel = np.ones((self.grow_kernel, self.grow_kernel), np.uint8)
        fg = cv2.dilate((label == PSEUDO_FG).astype(np.uint8), kernel) > 0
        bg = cv2.dilate((label == PSEUDO_BG).astype(np.uint8), kernel) > 0
        out = np.full(label.shape, PSEUDO_IGNORE, np.int64)
        out[fg & ~bg] = PSEUDO_FG
        out[bg & ~fg] = PSEUDO_BG
        return out

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
        label = self.draw(fg, bg, gh * gw, cam.ravel()).reshape(gh, gw)
        results['pseudo_label_map'] = self.grow(label)
        if self.keep_fg_region:
            results['pseudo_fg_region'] = (np.zeros((gh, gw), bool) if region is None
                                           else region.reshape(gh, gw))
        return results

    def __repr__(self):
        return (f'{self.__class__.__name__}(grid_stride={self.grid_stride}, '
                f'grid_size={self.grid_size}, num_fg_candidates={self.num_fg_candidates}, '
                f'num_bg_candidates={self.num_bg_candidates}, '
                f'num_samples={self.num_samples}, cam_key={self.cam_key!r}, '
                f'keep_fg_region={self.keep_fg_region}, fg_source={self.fg_source!r}, '
                f'bg_source={self.bg_source!r}, fg_draw={self.fg_draw!r}, '
                f'grow_kernel={self.grow_kernel})')
