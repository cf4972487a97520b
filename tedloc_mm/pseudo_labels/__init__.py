"""Pseudo-label CAMs into the CAM store (:mod:`tedloc_mm.fileio.cam_store`): the batched,
resumable generation loop and the Grad-CAM of any MMPretrain classifier. CLIP-ES lives
with the rest of CLIP in :mod:`tedloc_mm.clip`."""
from .classifier_cam import ClassifierGradCAM, build_classifier
from .generation import generate_cams

__all__ = ['ClassifierGradCAM', 'build_classifier', 'generate_cams']
