"""Prompt templates and the built-in class lists (CUB, ImageNet) for CLIP text anchors."""
from typing import List

from tedloc_mm.fileio.class_names import clean_class_name

#: Named template sets; ``{}`` stands for the class name.
TEMPLATE_SETS = {
    'single': ['a photo of a {}.'],
    'ensemble': [
        'a photo of a {}.',
        'a photo of the {}.',
        'a close-up photo of a {}.',
        'a bright photo of a {}.',
        'a cropped photo of a {}.',
        'a good photo of a {}.',
        'a photo of a large {}.',
        'a photo of a small {}.',
    ],
    'cub': ['a photo of a {}, a type of bird.', 'a close-up photo of a {}, a type of bird.'],
    # CLIP-ES's prompt (Lin et al., CVPR 2023; also the TeD-Loc authors' CLIP-ES code)
    'clip_es': ['a clean origami {}.'],
}


def _openai_imagenet_templates() -> List[str]:
    """The 80 prompt templates of OpenAI's ImageNet zero-shot classifier (as open_clip
    ships them, lambdas turned into ``{}`` strings); SCLIP and NACLIP use them too."""
    from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES
    return [t('{}') for t in OPENAI_IMAGENET_TEMPLATES]

#: names of the built-in class lists (:func:`builtin_class_names`)
BUILTIN_CLASS_LISTS = ('cub', 'imagenet', 'ilsvrc', 'imagenet_openai', 'ilsvrc_openai')


def builtin_class_names(dataset: str) -> List[str]:
    """A built-in class list in label order, cleaned with :func:`clean_class_name`.

    * ``'cub'``: MMPretrain's ``CUB_CATEGORIES`` = CUB's folder names without the
      ``NNN.`` prefix and underscores (``'Black footed Albatross'``), the names the
      TeD-Loc authors' CLIP code derives from the folders;
    * ``'imagenet'`` / ``'ilsvrc'``: MMPretrain's ``IMAGENET_CATEGORIES``, the first of
      the WordNet synonyms (``'tench'``, ``'crane'`` twice);
    * ``'imagenet_openai'`` / ``'ilsvrc_openai'``: the readable names OpenAI curated for
      CLIP's ImageNet zero-shot classifier (open_clip's ``IMAGENET_CLASSNAMES``; e.g.
      ``'crane bird'`` / ``'construction crane'``), in the same label order.
    """
    key = dataset.lower()
    if key not in BUILTIN_CLASS_LISTS:
        raise ValueError(f'unknown built-in class list {dataset!r}; choose from '
                         f'{list(BUILTIN_CLASS_LISTS)}')
    if key.endswith('_openai'):
        from open_clip.zero_shot_metadata import IMAGENET_CLASSNAMES
        return list(IMAGENET_CLASSNAMES)
    from mmpretrain.datasets.categories import CUB_CATEGORIES, IMAGENET_CATEGORIES
    table = {'cub': CUB_CATEGORIES, 'imagenet': IMAGENET_CATEGORIES,
             'ilsvrc': IMAGENET_CATEGORIES}
    return [clean_class_name(n) for n in table[key]]


def resolve_templates(spec) -> List[str]:
    """A template-set name (``TEMPLATE_SETS`` or ``'openai_imagenet'``, OpenAI's 80
    ImageNet templates), or a list of templates each containing ``{}`` once."""
    if isinstance(spec, str) and spec == 'openai_imagenet':
        return _openai_imagenet_templates()
    templates = TEMPLATE_SETS[spec] if isinstance(spec, str) and spec in TEMPLATE_SETS \
        else ([spec] if isinstance(spec, str) else list(spec))
    for t in templates:
        if t.count('{}') != 1:
            raise ValueError(f'prompt template {t!r} must contain "{{}}" exactly once '
                             f'(named sets: {sorted(TEMPLATE_SETS) + ["openai_imagenet"]})')
    return templates
