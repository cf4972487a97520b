"""Overlays of localization maps and boxes, and the validation / test hook."""
from .visualization_hook import WSOLVisualizationHook
from .wsol_visualizer import WSOLVisualizer
from .wsol_overlay import (draw_localization, format_topk, predicted_box_edges,
                           protocol_box_to_edges)

__all__ = ['WSOLVisualizationHook', 'WSOLVisualizer', 'draw_localization', 'format_topk',
           'predicted_box_edges', 'protocol_box_to_edges']
