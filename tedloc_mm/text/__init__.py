"""Class names -> prompts -> open_clip text embeddings -> anchor files.

The anchor file format is documented in :mod:`tedloc_mm.text.anchor_file`;
``tools/build_text_anchors.py`` writes one, ``PatchMILHead(anchor_file=...)`` reads it.
"""
from .anchor_file import FORMAT_VERSION, load_anchor_file, save_anchor_file
from .clip_text_encoder import encode_class_names, load_text_model
from .prompts import (TEMPLATE_SETS, builtin_class_names, clean_class_name, read_class_names,
                      resolve_templates)

__all__ = ['FORMAT_VERSION', 'load_anchor_file', 'save_anchor_file', 'encode_class_names',
           'load_text_model', 'TEMPLATE_SETS', 'builtin_class_names', 'clean_class_name',
           'read_class_names', 'resolve_templates']
