"""Class names -> prompts -> open_clip text embeddings -> anchor files.

The anchor file format is documented in :mod:`tedloc_mm.text.anchor_file`;
``tools/build_text_anchors.py`` writes one, ``PatchMILHead(anchor_file=...)`` reads it.
"""
from .anchor_file import FORMAT_VERSION, load_anchor_file, save_anchor_file
from .clip_checkpoint import clip_image_mean_std, is_torchscript_archive, load_clip
from .clip_text_encoder import encode_class_names, load_text_model
from .prompts import (BUILTIN_CLASS_LISTS, TEMPLATE_SETS, builtin_class_names, clean_class_name,
                      class_names_from_folders, read_class_names, resolve_templates)

__all__ = ['clip_image_mean_std', 'is_torchscript_archive', 'load_clip',
           'BUILTIN_CLASS_LISTS', 'class_names_from_folders', 'FORMAT_VERSION',
           'load_anchor_file', 'save_anchor_file', 'encode_class_names',
           'load_text_model', 'TEMPLATE_SETS', 'builtin_class_names', 'clean_class_name',
           'read_class_names', 'resolve_templates']
