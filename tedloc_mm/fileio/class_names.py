"""Class names: the one reader of class-name files, and names from image folders.

Used by the data sets (``metadata/class_names.txt``, names kept as written) and by the
CLIP side (anchors, prompts: names cleaned for a prompt). Both refuse an empty name and a
name repeated on another line, naming both lines: two classes with one name cannot be
told apart in results, and their prompts would give identical text anchors.
"""
import os.path as osp
import re
from typing import List, Sequence

_INDEX_PREFIX = re.compile(r'^\s*\d+[\s,]+')   # "12 name" / "12,name" (line numbers)
_CUB_PREFIX = re.compile(r'^\d+\.')           # "012.Yellow_bellied_Flycatcher"


class ClassNamesError(ValueError):
    """A class-name file is wrong; the message names the file and line(s)."""


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


def check_unique_names(names: Sequence[str], source: str, casefold: bool = False) -> None:
    """Raise :class:`ClassNamesError` for a name used twice (message ``<source>:<line>: ...``,
    ``source`` naming the list, lines 1-based). ``casefold``: compare ignoring case, as a
    CLIP tokenizer does (``'Cardigan'`` the corgi and ``'cardigan'`` the sweater give one
    prompt)."""
    seen = {}
    for lineno, name in enumerate(names, 1):
        key = name.casefold() if casefold else name
        if key in seen:
            same = '' if names[seen[key] - 1] == name else f' ({names[seen[key] - 1]!r})'
            raise ClassNamesError(
                f'{source}:{lineno}: class name {name!r} is already on line '
                f'{seen[key]}{same}{" (ignoring case, as a CLIP tokenizer does)" if same else ""}'
                ': each class needs a name of its own')
        seen[key] = lineno


def read_class_names(path: str, clean: bool = False) -> List[str]:
    """Class names from a text file, one per line in class-index order (line i, 0-based,
    names class i).

    ``clean=False`` (data sets): each line is the name, as written. ``clean=True``
    (prompts and anchors): the line may also be ``<index> name`` / ``<index>,name`` (the
    index must be the line's 0- or 1-based position) or CUB's ``classes.txt`` (``1
    001.Black_footed_Albatross``), and the name is cleaned with
    :func:`clean_class_name`; names are then compared ignoring case.

    Trailing empty lines are ignored; an empty name or a repeated name is a
    :class:`ClassNamesError` naming the file and line(s).
    """
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'class-names file not found: {path} (one name per line, line i names class i; '
            'tools/dataset_converters/cub.py writes it for CUB)')
    with open(path, encoding='utf-8') as f:
        lines = f.read().splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    names = []
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            raise ClassNamesError(f'{path}:{lineno}: empty class name')
        if clean:
            m = _INDEX_PREFIX.match(line)
            if m:
                idx = int(m.group(0).strip(' ,\t'))
                if idx not in (lineno - 1, lineno):
                    raise ClassNamesError(
                        f'{path}:{lineno}: index {idx} does not match the line '
                        'position (classes must be listed in index order)')
                line = line[m.end():]
            names.append(clean_class_name(line))
        else:
            names.append(line.strip())
    check_unique_names(names, path, casefold=clean)
    return names


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
