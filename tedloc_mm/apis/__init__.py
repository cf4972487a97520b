"""Inference: ``WSOLInferencer(config, weights)(images)``, and the function API
``init_localizer(config, checkpoint)``, ``inference_localizer(model, images)``."""
from .inference import inference_localizer, init_localizer
from .inference_steps import LocalizationResult, box_to_original, build_inference_pipeline
from .wsol_inferencer import WSOLInferencer

__all__ = ['WSOLInferencer', 'init_localizer', 'inference_localizer', 'LocalizationResult',
           'build_inference_pipeline', 'box_to_original']
