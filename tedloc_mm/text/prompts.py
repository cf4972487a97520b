"""Class names and prompt templates for building text anchors."""
import os.path as osp
import re
from typing import List, Sequence

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

_INDEX_PREFIX = re.compile(r'^\s*\d+[\s,]+')   # "12 name" / "12,name" (line numbers)
_CUB_PREFIX = re.compile(r'^\d+\.')           # "012.Yellow_bellied_Flycatcher"


def clean_class_name(name: str) -> str:
    """Readable name for a prompt: CUB-style prefixes and underscores removed, only the
    first of comma-separated ImageNet synonyms kept.

    >>> clean_class_name('001.Black_footed_Albatross')
    'Black footed Albatross'
    >>> clean_class_name('tench, Tinca tinca')
    'tench'
    """
    name = _CUB_PREFIX.sub('', name.strip())
    name = name.split(',')[0]
    return ' '.join(name.replace('_', ' ').split())


def read_class_names(path: str) -> List[str]:
    """Class names from a text file, one per line in class-index order.

    Accepted line forms: ``name``, ``<index> name`` / ``<index>,name`` (the index must
    be the 0- or 1-based line position), and CUB's ``classes.txt`` (``1
    001.Black_footed_Albatross``). Empty lines and duplicate names are errors naming
    the line.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'class-name file {path!r} does not exist')
    names, seen = [], {}
    with open(path, encoding='utf-8') as f:
        lines = f.read().splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            raise ValueError(f'{path}, line {lineno}: empty class name')
        m = _INDEX_PREFIX.match(line)
        if m:
            idx = int(m.group(0).strip(' ,\t'))
            if idx not in (lineno - 1, lineno):
                raise ValueError(f'{path}, line {lineno}: index {idx} does not match the '
                                 f'line position (classes must be listed in index order)')
            line = line[m.end():]
        name = clean_class_name(line)
        if name in seen:
            raise ValueError(f'{path}, line {lineno}: class name {name!r} already on line '
                             f'{seen[name]}')
        seen[name] = lineno
        names.append(name)
    return names


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


def class_names_from_folders(image_ids: Sequence[str], labels: Sequence[int]) -> List[str]:
    """Class names from the image folders (CUB: ``'001.Black_footed_Albatross/x.jpg'``
    -> ``'Black footed Albatross'`` for label 0): every image of a label must sit in
    the same folder, and every label in ``0..K-1`` must have one."""
    folder = {}
    for img_id, label in zip(image_ids, labels):
        parts = str(img_id).replace('\\', '/').split('/')
        if len(parts) < 2:
            raise ValueError(f'image id {img_id!r} has no folder to take a class name from')
        name, label = parts[-2], int(label)
        if folder.setdefault(label, name) != name:
            raise ValueError(f'class {label} has images in two folders, {folder[label]!r} and '
                             f'{name!r} (image {img_id!r})')
    missing = sorted(set(range(max(folder) + 1)) - set(folder)) if folder else []
    if missing:
        raise ValueError(f'no image (so no folder name) for class(es) {missing[:10]}')
    return [clean_class_name(folder[k]) for k in range(len(folder))]


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
