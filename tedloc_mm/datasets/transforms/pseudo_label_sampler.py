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
    """Sample balanced FG / BG pixel pseudo-labels from the CAM at the decoder's grid.

    Steps, on each call:

    1. The CAM (``results['cam']``, float (H, W), aligned with the input image by the
       geometric transforms) is resized to the decoder's output grid
       ``(H // out_stride, W // out_stride)`` (or ``out_size``) with **area**
       interpolation, i.e. each output cell gets the mean CAM over the input pixels it
       covers.
    2. Otsu's threshold ``t`` (``skimage.filters.threshold_otsu``) on that grid,
       quantised to 256 levels (see :meth:`otsu_region`), gives the FG region
       ``{C > t}``.
    3. FG candidates: the ``num_fg_candidates`` (n+) cells of highest CAM inside the
       region; BG candidates: the ``num_bg_candidates`` (n-) cells of lowest CAM
       outside it. Ties at the cut are broken at random on each call.
    4. A fresh random subset of ``k = min(num_samples, #FG candidates, #BG candidates)``
       cells is drawn from each, without replacement (balanced: k FG and k BG).
       The draw uses NumPy's global generator, which MMEngine seeds (``randomness.seed``
       and per-worker seeds), so runs are reproducible and draws differ between calls.

    Counts (n+, n-, ``num_samples``) are ints, or floats in (0, 1]: fractions of the
    FG region's size (n+), of the outside region's size (n-), or of the smaller
    candidate set (``num_samples``).

    Degenerate CAMs: a constant CAM (including all zeros, how the CAM store keeps a
    CAM without any activation) has no FG / BG separation; then, and whenever one of
    the two candidate sets is empty, no cell is sampled (all -1), the pixel losses get
    no term from this image, and nothing is NaN. A CAM with non-finite values raises
    ``ValueError`` naming the image id.

    Required keys: ``img``, ``cam``. Added key: ``pseudo_label_map`` int64 (h', w'):
    1 FG, 0 BG, -1 not sampled (see ``tedloc_mm/structures.py``). With
    ``keep_fg_region=True`` also ``pseudo_fg_region`` bool (h', w'), the Otsu region
    of step 2 (all False for a constant CAM), for inspection
    (``tools/analysis_tools/browse_pseudo_labels.py``); the model does not read it.

    Args:
        out_stride (int, optional): decoder output stride relative to the network
            input. Leave it unset in configs: the tools fill it from the model's
            ``model.neck.out_stride``
            (:func:`tedloc_mm.engine.runner_config.resolve_pseudo_label_stride`).
        out_size (tuple, optional): (h', w'); overrides ``out_stride``.
        num_fg_candidates (int | float): n+. Default 0.5 (top half of the FG region).
        num_bg_candidates (int | float): n-. Default 0.5.
        num_samples (int | float): k per class per call. Default 16.
        cam_key (str): where the CAM is. Default ``'cam'``.
        keep_fg_region (bool): also store the Otsu region. Default False.
    """

    def __init__(self,
                 out_stride: Optional[int] = None,
                 out_size: Optional[Sequence[int]] = None,
                 num_fg_candidates: Number = 0.5,
                 num_bg_candidates: Number = 0.5,
                 num_samples: Number = 16,
                 cam_key: str = 'cam',
                 keep_fg_region: bool = False):
        if out_size is None and out_stride is not None and (
                not isinstance(out_stride, int) or out_stride < 1):
            raise ValueError(f'out_stride must be a positive int, got {out_stride!r}')
        for name, n in (('num_fg_candidates', num_fg_candidates),
                        ('num_bg_candidates', num_bg_candidates),
                        ('num_samples', num_samples)):
            _count(n, 1, name)  # validates the type / range early
        self.out_stride = out_stride
        self.out_size = tuple(out_size) if out_size is not None else None
        self.num_fg_candidates = num_fg_candidates
        self.num_bg_candidates = num_bg_candidates
        self.num_samples = num_samples
        self.cam_key = cam_key
        self.keep_fg_region = keep_fg_region

    def grid_shape(self, img_shape) -> tuple:
        if self.out_size is not None:
            return self.out_size
        if self.out_stride is None:
            raise ValueError(
                "PseudoLabelSampler has no out_stride: it is the decoder's "
                'model.neck.out_stride, which tools/train.py fills in. Building the '
                'pipeline yourself, call tedloc_mm.engine.resolve_pseudo_label_stride(cfg) '
                'first or give out_stride.')
        return img_shape[0] // self.out_stride, img_shape[1] // self.out_stride

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
        """The flat Otsu FG region of a CAM on the output grid; None when constant."""
        flat = cam_grid.ravel()
        lo, hi = float(flat.min()), float(flat.max())
        if hi - lo <= 1e-6 * max(1.0, abs(hi)):
            return None  # constant CAM: no FG / BG separation
        return self.otsu_region(flat, lo, hi)

    def candidates(self, cam_grid: np.ndarray, fg_region: Optional[np.ndarray] = None):
        """Flat indices of the FG and BG candidates of a CAM on the output grid
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

    def transform(self, results: dict) -> dict:
        cam = np.asarray(results[self.cam_key], np.float32)
        if not np.isfinite(cam).all():
            raise ValueError(f'CAM of {results.get("img_id")!r} has non-finite values')
        gh, gw = self.grid_shape(results['img'].shape[:2])
        if gh < 1 or gw < 1:
            raise ValueError(f'output grid {(gh, gw)} is empty for input '
                             f'{results["img"].shape[:2]} and stride {self.out_stride}')
        if cam.shape != (gh, gw):
            cam = cv2.resize(cam, (gw, gh), interpolation=cv2.INTER_AREA)
        region = self.fg_region(cam)
        fg, bg = self.candidates(cam, region)
        k = _count(self.num_samples, min(fg.size, bg.size), 'num_samples')
        label = np.full(gh * gw, PSEUDO_IGNORE, np.int64)
        if k > 0:
            label[np.random.choice(fg, k, replace=False)] = PSEUDO_FG
            label[np.random.choice(bg, k, replace=False)] = PSEUDO_BG
        results['pseudo_label_map'] = label.reshape(gh, gw)
        if self.keep_fg_region:
            results['pseudo_fg_region'] = (np.zeros((gh, gw), bool) if region is None
                                           else region.reshape(gh, gw))
        return results

    def __repr__(self):
        return (f'{self.__class__.__name__}(out_stride={self.out_stride}, '
                f'out_size={self.out_size}, num_fg_candidates={self.num_fg_candidates}, '
                f'num_bg_candidates={self.num_bg_candidates}, '
                f'num_samples={self.num_samples}, cam_key={self.cam_key!r}, '
                f'keep_fg_region={self.keep_fg_region})')
