"""CLIP, in one place: loading local weights, prompts and built-in class lists, text
embeddings (the anchors' source), the ViT forward with SCLIP / NACLIP last attentions,
and CLIP-ES (Grad-CAM + attention-affinity refinement).

open_clip is imported inside the functions that need it, after the import hooks of
:mod:`tedloc_mm.compat` (its import pulls torchvision in).
"""
from .checkpoint import clip_image_mean_std, is_torchscript_archive, load_clip
from .prompts import (BUILTIN_CLASS_LISTS, TEMPLATE_SETS, builtin_class_names,
                      resolve_templates)
from .text_encoder import encode_class_names, load_text_model

__all__ = ['clip_image_mean_std', 'is_torchscript_archive', 'load_clip',
           'BUILTIN_CLASS_LISTS', 'TEMPLATE_SETS', 'builtin_class_names', 'resolve_templates',
           'encode_class_names', 'load_text_model']
