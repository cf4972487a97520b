"""Prompt templates and the built-in class lists (CUB, ImageNet) for CLIP text anchors."""
from typing import List

from tedloc_mm.fileio.class_names import ClassNamesError, check_unique_names, clean_class_name

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

#: Renamed ImageNet classes, so that no two classes share a name (ignoring case: CLIP's
#: tokenizer lowercases, so 'Cardigan' and 'cardigan' give one prompt). Each entry:
#: index -> (WordNet id, name in the upstream list, our name, the reason). Names come
#: from the synset's own WordNet synonyms where it has a second one, else from its gloss.
IMAGENET_RENAMES = {
    # MMPretrain's IMAGENET_CATEGORIES, first synonym
    'imagenet': {
        134: ('n02012849', 'crane', 'crane bird',
              'gloss "large long-necked wading bird"; no second synonym'),
        517: ('n03126707', 'crane', 'construction crane',
              'gloss "lifts and moves heavy objects ... pivoted boom"; no second synonym'),
        264: ('n02113186', 'Cardigan', 'Cardigan Welsh corgi',
              'second synonym (the dog; 474 "cardigan" is the sweater)'),
        639: ('n03710721', 'maillot', 'tank suit',
              'second synonym, gloss "a woman\'s one-piece bathing suit" (638 "maillot" '
              'is "tights for dancers or gymnasts")'),
    },
    # open_clip's IMAGENET_CLASSNAMES (OpenAI's curated names)
    'imagenet_openai': {
        744: ('n04008634', 'missile', 'projectile',
              'first synonym of "projectile, missile", gloss "... not self-propelled" '
              '(657 "missile" is the rocket with a warhead)'),
        836: ('n04355933', 'sunglasses', 'sunglass',
              'its WordNet lemma, gloss "a convex lens that focuses the rays of the sun" '
              '(837 "sunglasses" is the dark glasses)'),
    },
}


def builtin_class_names(dataset: str) -> List[str]:
    """A built-in class list in label order, cleaned with :func:`clean_class_name`, with
    no name twice (ignoring case).

    * ``'cub'``: MMPretrain's ``CUB_CATEGORIES`` = CUB's folder names without the
      ``NNN.`` prefix and underscores (``'Black footed Albatross'``), the names the
      TeD-Loc authors' CLIP code derives from the folders;
    * ``'imagenet'`` / ``'ilsvrc'``: MMPretrain's ``IMAGENET_CATEGORIES``, the first of
      the WordNet synonyms (``'tench'``), with the renames of :data:`IMAGENET_RENAMES`
      (``'crane bird'`` / ``'construction crane'``, ...);
    * ``'imagenet_openai'`` / ``'ilsvrc_openai'``: the readable names OpenAI curated for
      CLIP's ImageNet zero-shot classifier (open_clip's ``IMAGENET_CLASSNAMES``), in the
      same label order, with two renames (OpenAI's list has ``'missile'`` and
      ``'sunglasses'`` twice: ``argmax`` could never pick the second of each pair).

    Raises :class:`~tedloc_mm.fileio.ClassNamesError` if an upstream list changed so that
    a name repeats or a rename no longer fits (the message names the index).
    """
    key = dataset.lower()
    if key not in BUILTIN_CLASS_LISTS:
        raise ValueError(f'unknown built-in class list {dataset!r}; choose from '
                         f'{list(BUILTIN_CLASS_LISTS)}')
    if key.endswith('_openai'):
        from open_clip.zero_shot_metadata import IMAGENET_CLASSNAMES
        names, renames = list(IMAGENET_CLASSNAMES), IMAGENET_RENAMES['imagenet_openai']
    else:
        from mmpretrain.datasets.categories import CUB_CATEGORIES, IMAGENET_CATEGORIES
        table = {'cub': CUB_CATEGORIES, 'imagenet': IMAGENET_CATEGORIES,
                 'ilsvrc': IMAGENET_CATEGORIES}
        names = [clean_class_name(n) for n in table[key]]
        renames = {} if key == 'cub' else IMAGENET_RENAMES['imagenet']
    source = f'built-in class list {dataset!r} (line = class index + 1)'
    for idx, (wnid, upstream, ours, _) in renames.items():
        if len(names) != 1000 or names[idx] != upstream:
            raise ClassNamesError(
                f'{source}: class {idx} ({wnid}) is {names[idx] if idx < len(names) else None!r}'
                f', expected {upstream!r} before renaming it to {ours!r}: the upstream list '
                'changed; update IMAGENET_RENAMES')
        names[idx] = ours
    check_unique_names(names, source, casefold=True)
    return names


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
