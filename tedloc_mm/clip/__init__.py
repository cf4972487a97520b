"""CLIP, in one place: loading local weights, prompts and built-in class lists, text
embeddings (the anchors' source), the ViT forward with SCLIP / NACLIP last attentions,
and CLIP-ES (Grad-CAM + attention-affinity refinement).

open_clip is imported inside the functions that need it, after the import hooks of
:mod:`tedloc_mm.compat` (its import pulls torchvision in). The names below are resolved
on first use, so that :mod:`tedloc_mm.clip.prompts` (the class lists a tool's ``--help``
shows) imports without torch.
"""
import importlib

_EXPORTS = {
    'checkpoint': ('clip_image_mean_std', 'is_torchscript_archive', 'load_clip'),
    'prompts': ('BUILTIN_CLASS_LISTS', 'TEMPLATE_SETS', 'builtin_class_names',
                'resolve_templates'),
    'text_encoder': ('encode_class_names', 'load_text_model'),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = ['clip_image_mean_std', 'is_torchscript_archive', 'load_clip',
           'BUILTIN_CLASS_LISTS', 'TEMPLATE_SETS', 'builtin_class_names', 'resolve_templates',
           'encode_class_names', 'load_text_model']


def __getattr__(name):
    if name in _WHERE:
        return getattr(importlib.import_module(f'{__name__}.{_WHERE[name]}'), name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
