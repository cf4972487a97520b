"""WSOLVisualizer: the MMEngine Visualizer of tedloc_mm, registered in the 'tedloc' scope.

It draws one localization result (heat map, predicted box, top classes) with
:func:`~tedloc_mm.visualization.draw_localization` and sends the picture where an
MMEngine visualizer sends pictures: a window (``show``), a file (``out_file``) or its
vis backends (``add_image``: local files, TensorBoard). :class:`WSOLInferencer` builds
it from the registry (``dict(type='WSOLVisualizer')``).
"""
from typing import Optional

import mmcv
import numpy as np
from mmengine.visualization import Visualizer

from tedloc_mm.registry import VISUALIZERS
from .wsol_overlay import draw_localization


@VISUALIZERS.register_module()
class WSOLVisualizer(Visualizer):
    """A :class:`~mmengine.visualization.Visualizer` that draws localization results.

    A result is anything with ``pred_map`` (float (h, w) at the image's size), ``bbox``
    (x0, y0, x1, y1 float pixel edges of the image, or None) and ``topk`` (a list of
    dicts with ``name`` and ``score``, best first), e.g. a
    :class:`tedloc_mm.apis.LocalizationResult`.
    """

    def draw_localization_result(self, image: np.ndarray, result, topk: int = 3,
                                 alpha: float = 0.5) -> np.ndarray:
        """The overlay of ``result`` on ``image`` ((h, w, 3) uint8 RGB), as RGB uint8."""
        texts = [f'{t["name"]}: {t["score"]:.3f}' for t in result.topk[:topk]]
        boxes = None if result.bbox is None else [result.bbox]
        return draw_localization(self, image, result.pred_map, pred_boxes=boxes,
                                 texts=texts, alpha=alpha)

    def add_localization(self, name: str, image: np.ndarray, result, topk: int = 3,
                         alpha: float = 0.5, show: bool = False, wait_time: float = 0,
                         out_file: Optional[str] = None, step: int = 0) -> np.ndarray:
        """Draw ``result``; show it, write it to ``out_file`` (PNG, JPEG...) or, when
        no file is given, hand it to the vis backends as ``name`` at ``step``."""
        drawn = self.draw_localization_result(image, result, topk=topk, alpha=alpha)
        if show:
            self.show(drawn, win_name=name, wait_time=wait_time)
        if out_file is not None:
            mmcv.imwrite(mmcv.rgb2bgr(drawn), out_file)
        else:
            self.add_image(name, drawn, step)
        return drawn
