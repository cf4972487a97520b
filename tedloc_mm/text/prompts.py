"""Class names and prompt templates for building text anchors."""
import os.path as osp
import re
from typing import List

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
}

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


def builtin_class_names(dataset: str) -> List[str]:
    """MMPretrain's ``CUB_CATEGORIES`` (``'cub'``) or ``IMAGENET_CATEGORIES``
    (``'imagenet'`` / ``'ilsvrc'``), cleaned with :func:`clean_class_name`."""
    from mmpretrain.datasets.categories import CUB_CATEGORIES, IMAGENET_CATEGORIES
    table = {'cub': CUB_CATEGORIES, 'imagenet': IMAGENET_CATEGORIES,
             'ilsvrc': IMAGENET_CATEGORIES}
    if dataset.lower() not in table:
        raise ValueError(f'unknown built-in class list {dataset!r}; choose from {sorted(table)}')
    return [clean_class_name(n) for n in table[dataset.lower()]]


def resolve_templates(spec) -> List[str]:
    """A template-set name, or a list of templates each containing ``{}`` once."""
    templates = TEMPLATE_SETS[spec] if isinstance(spec, str) and spec in TEMPLATE_SETS \
        else ([spec] if isinstance(spec, str) else list(spec))
    for t in templates:
        if t.count('{}') != 1:
            raise ValueError(f'prompt template {t!r} must contain "{{}}" exactly once '
                             f'(named sets: {sorted(TEMPLATE_SETS)})')
    return templates
