"""Inference: ``WSOLInferencer(config, weights)(images)``, and the function API
``init_localizer(config, checkpoint)``, ``inference_localizer(model, images)``."""
from .cam_threshold import DEFAULT_CAM_THRESHOLD, resolve_cam_threshold
from .inference import (LocalizationResult, box_to_original, build_inference_pipeline,
                        inference_localizer, init_localizer)
from .wsol_inferencer import WSOLInferencer

__all__ = ['WSOLInferencer', 'init_localizer', 'inference_localizer', 'LocalizationResult',
           'build_inference_pipeline', 'box_to_original', 'resolve_cam_threshold',
           'DEFAULT_CAM_THRESHOLD']
