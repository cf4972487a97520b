"""Draw a localization overlay: heat map, GT boxes (green), predicted box (red), classes.

Drawing goes through MMEngine's :class:`~mmengine.visualization.Visualizer`
(``draw_featmap`` for the heat map, ``draw_bboxes``, ``draw_texts``), so the same
picture can be written by ``tools/infer.py`` or sent to the Runner's visualizer
backends (local files, TensorBoard) by :class:`WSOLVisualizationHook`.

Text (top classes, threshold) and the box legend go into a white strip to the right of
the image, never over it: on a 224 px image, text drawn on the picture hides the very
region a reader checks.

Box convention of the drawing: float pixel edges x0, y0, x1, y1 (x1, y1 exclusive).
The protocol's inclusive integer boxes (``boxes_at_threshold``) are converted with
:func:`protocol_box_to_edges`.
"""
from typing import Optional, Sequence, Tuple

import numpy as np
import torch
from mmengine.visualization import Visualizer

from tedloc_mm.evaluation import boxes_at_threshold, prepare_map

GT_COLOR = (0, 200, 0)
PRED_COLOR = (230, 0, 0)


def protocol_box_to_edges(boxes: np.ndarray) -> np.ndarray:
    """Inclusive int boxes (N, 4) -> float edges (N, 4): x1 + 1, y1 + 1."""
    out = np.asarray(boxes, dtype=np.float64).reshape(-1, 4).copy()
    out[:, 2:] += 1
    return out


def predicted_box_edges(pred_map, cam_threshold: float) -> Optional[np.ndarray]:
    """The WSOL protocol's box (min-max normalisation, 8-bit quantisation, largest
    contour; :func:`tedloc_mm.evaluation.boxes_at_threshold`) of a map at its own
    size, as float edges (1, 4); None for a constant or non-finite map."""
    map01, finite = prepare_map(pred_map)
    if not finite or map01.max() <= 0:
        return None
    return protocol_box_to_edges(boxes_at_threshold(map01, cam_threshold))


def format_topk(class_names: Optional[Sequence[str]], scores, k: int = 3) -> list:
    """'name: score' lines of the k best classes of a (K,) score vector."""
    scores = torch.as_tensor(scores).detach().float().cpu().flatten()
    top = torch.topk(scores, min(k, scores.numel()))
    lines = []
    for s, i in zip(top.values.tolist(), top.indices.tolist()):
        name = class_names[i] if class_names and i < len(class_names) else str(i)
        lines.append(f'{name}: {s:.3f}')
    return lines


def text_strip(visualizer: Visualizer, height: int, lines: Sequence[Tuple[str, tuple]],
               width: Optional[int] = None) -> np.ndarray:
    """A white (height, width, 3) uint8 panel with one coloured text line per entry of
    ``lines`` ((text, RGB colour)); the width fits the longest line unless given."""
    fs = max(7, min(14, height // 16))       # font size in pixels
    pad, step = max(2, fs // 3), int(fs * 1.45)
    if width is None:
        width = max(height // 2, pad * 2 + int(0.8 * fs * max(len(t) for t, _ in lines)))
    visualizer.set_image(np.full((height, width, 3), 255, np.uint8))
    for i, (text, colour) in enumerate(lines):
        if pad + i * step + fs > height:
            break  # more lines than fit: drop the rest rather than draw over the edge
        visualizer.draw_texts(text, np.array([pad, pad + i * step]), font_sizes=fs,
                              colors=[tuple(int(c) for c in colour)],
                              vertical_alignments='top')
    return visualizer.get_image()


def draw_localization(visualizer: Visualizer,
                      image: np.ndarray,
                      map01: Optional[np.ndarray] = None,
                      pred_boxes: Optional[np.ndarray] = None,
                      gt_boxes: Optional[np.ndarray] = None,
                      texts: Sequence[str] = (),
                      alpha: float = 0.5) -> np.ndarray:
    """Return the overlay as an RGB uint8 array.

    The left (H, W) part is the image with the heat map and boxes. With ``texts``, a
    strip to its right (same height) lists them, followed by the legend of the boxes
    drawn; without, the result has the image's size.

    Args:
        visualizer: any MMEngine ``Visualizer`` (its current image is replaced).
        image: (H, W, 3) uint8 **RGB**.
        map01: float (H, W) map (normalised or not), drawn as a JET heat map.
        pred_boxes, gt_boxes: float edges (N, 4) in this image's pixels.
        texts: lines for the strip beside the image (e.g. top classes).
        alpha: weight of the heat map in the blend.
    """
    image = np.ascontiguousarray(image)
    if map01 is not None:
        if tuple(map01.shape) != tuple(image.shape[:2]):
            raise ValueError(f'the map is {map01.shape}, the image {image.shape[:2]}')
        # draw_featmap min-max normalises, colours with JET and blends
        image = Visualizer.draw_featmap(torch.as_tensor(np.asarray(map01, np.float32))[None],
                                        overlaid_image=image,
                                        channel_reduction='squeeze_mean',
                                        alpha=alpha)
    visualizer.set_image(image)
    h, w = image.shape[:2]
    lw = max(1, round(min(h, w) / 112))
    legend = []
    if gt_boxes is not None and len(gt_boxes):
        visualizer.draw_bboxes(np.asarray(gt_boxes, np.float64).reshape(-1, 4),
                               edge_colors=GT_COLOR, line_widths=lw)
        legend.append(('green: GT box', GT_COLOR))
    if pred_boxes is not None and len(pred_boxes):
        visualizer.draw_bboxes(np.asarray(pred_boxes, np.float64).reshape(-1, 4),
                               edge_colors=PRED_COLOR, line_widths=lw)
        legend.append(('red: predicted box', PRED_COLOR))
    drawn = visualizer.get_image()
    if not texts:
        return drawn
    strip = text_strip(visualizer, h, [(t, (0, 0, 0)) for t in texts] + legend)
    return np.concatenate([drawn, strip], axis=1)
