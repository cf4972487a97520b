"""Reader of the WSOL metadata format of Choe et al. (CVPR 2020, ``wsolevaluation``).

One directory per split holds four comma-separated text files; every line starts with
the image id, the image's path relative to the image root (e.g.
``001.Black_footed_Albatross/Black_Footed_Albatross_0001_796111.jpg``)::

    image_ids.txt      path
    class_labels.txt   path,label                 (label: 0-based class index)
    image_sizes.txt    path,width,height          (original pixels)
    localization.txt   path,x0,y0,x1,y1           one line per box (original pixels), or
                       path,mask_path,ignore_path one line per mask (masks are OR-ed;
                                                  ignore_path may be empty)

``localization.txt`` is optional (a training split may have none). A split may hold
boxes and masks both: then one of the files in ``localization_files`` (default
``localization.txt`` and ``localization_masks.txt``) has the boxes, the other the
masks. Boxes may use the inclusive (x1 = last pixel) or the exclusive convention: a
box needs ``0 <= x0 <= x1 <= width`` (same for y). Every error in
these files raises :class:`WSOLMetadataError` naming the file and the 1-based line:
an id missing from a file, an id that is not in ``image_ids.txt``, a duplicate id,
a malformed line, a label outside ``[0, num_classes)``, a degenerate box or one that
lies outside its image (``box_policy='error'``, the default; ``'clip'`` clips it to
the image, counts and logs it).
"""
import os.path as osp
from typing import Dict, List, Optional, Tuple

import numpy as np
from mmengine.logging import MMLogger

METADATA_FILES = ('image_ids.txt', 'class_labels.txt', 'image_sizes.txt')
#: optional localization files, read when present; each holds boxes or masks
LOCALIZATION_FILES = ('localization.txt', 'localization_masks.txt')


class WSOLMetadataError(ValueError):
    """A metadata file is wrong; the message names the file and line."""


def _fail(path: str, lineno: int, msg: str):
    raise WSOLMetadataError(f'{path}:{lineno}: {msg}')


def _read_lines(path: str) -> List[Tuple[int, List[str]]]:
    """(1-based line number, comma-split fields) of each non-empty line."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'WSOL metadata file not found: {path}')
    rows = []
    with open(path, encoding='utf-8') as f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if line:
                rows.append((lineno, [s.strip() for s in line.split(',')]))
    return rows


def _parse_number(path, lineno, text, kind=float):
    try:
        return kind(text)
    except ValueError:
        _fail(path, lineno, f'expected a number, got {text!r}')


def read_wsol_split(split_dir: str,
                    num_classes: Optional[int] = None,
                    box_policy: str = 'error',
                    localization_files=LOCALIZATION_FILES,
                    class_names_file: Optional[str] = None,
                    require_sizes: bool = True) -> List[dict]:
    """Read one split directory into a list of per-image dicts.

    ``class_names_file`` (where ``num_classes`` comes from) is only named in the error
    of a label outside ``[0, num_classes)``.

    ``require_sizes=False`` accepts images without a line in ``image_sizes.txt``
    (their dict has no ``meta_size``), as wsolevaluation's OpenImages metadata,
    whose ``image_sizes.txt`` is empty: masks need no size. A box still does.

    Returns:
        list[dict]: in ``image_ids.txt`` order, each with ``img_id`` (str),
        ``gt_label`` (int), ``meta_size`` ((h, w) from ``image_sizes.txt``) and,
        when a localization file exists, ``ori_gt_bboxes`` (float64 (N, 4),
        x0, y0, x1, y1 in original pixels) and / or ``mask_paths`` (list[str]) and
        ``ignore_path`` (str or None), both relative to the mask root.
    """
    assert box_policy in ('error', 'clip'), box_policy
    logger = MMLogger.get_current_instance()
    paths = {name: osp.join(split_dir, name) for name in METADATA_FILES}
    if not osp.isdir(split_dir):
        raise FileNotFoundError(f'WSOL metadata split directory not found: {split_dir}')

    infos: Dict[str, dict] = {}
    order: List[str] = []
    path = paths['image_ids.txt']
    for lineno, fields in _read_lines(path):
        if len(fields) != 1:
            _fail(path, lineno, f'expected 1 field (path), got {len(fields)}')
        img_id = fields[0]
        if img_id in infos:
            _fail(path, lineno, f'duplicate image id {img_id!r}')
        infos[img_id] = dict(img_id=img_id)
        order.append(img_id)

    def rows_of_known_ids(name, n_fields):
        path = paths[name]
        for lineno, fields in _read_lines(path):
            if len(fields) != n_fields:
                _fail(path, lineno,
                      f'expected {n_fields} comma-separated fields, got {len(fields)}')
            if fields[0] not in infos:
                _fail(path, lineno, f'image id {fields[0]!r} is not in image_ids.txt')
            yield path, lineno, fields

    for path, lineno, (img_id, label) in rows_of_known_ids('class_labels.txt', 2):
        info = infos[img_id]
        if 'gt_label' in info:
            _fail(path, lineno, f'duplicate image id {img_id!r}')
        label = _parse_number(path, lineno, label, int)
        if label < 0 or (num_classes is not None and label >= num_classes):
            source = f', the number of names in {class_names_file}' if class_names_file else ''
            _fail(path, lineno, f'unknown class {label} for {img_id!r} '
                  f'(expected 0 <= label < {num_classes}{source})')
        info['gt_label'] = label

    for path, lineno, (img_id, w, h) in rows_of_known_ids('image_sizes.txt', 3):
        info = infos[img_id]
        if 'meta_size' in info:
            _fail(path, lineno, f'duplicate image id {img_id!r}')
        w, h = (_parse_number(path, lineno, v, int) for v in (w, h))
        if w <= 0 or h <= 0:
            _fail(path, lineno, f'image size must be positive, got w={w}, h={h}')
        info['meta_size'] = (h, w)

    for name, key in (('class_labels.txt', 'gt_label'), ('image_sizes.txt', 'meta_size')):
        if key == 'meta_size' and not require_sizes:
            continue
        missing = [i for i in order if key not in infos[i]]
        if missing:
            raise WSOLMetadataError(
                f'{paths[name]}: {len(missing)} image id(s) of image_ids.txt have no '
                f'line, e.g. {missing[0]!r}')

    formats = set()
    for name in localization_files:
        path = osp.join(split_dir, name)
        if osp.isfile(path):
            fmt = _read_localization(path, infos, order, box_policy, logger)
            if fmt in formats:
                raise WSOLMetadataError(f'{path}: a second file with {fmt} in {split_dir}')
            formats.add(fmt)
    return [infos[i] for i in order]


def _read_localization(path, infos, order, box_policy, logger):
    rows = _read_lines(path)
    if not rows:
        raise WSOLMetadataError(f'{path}: empty localization file')
    n_fields = len(rows[0][1])
    if n_fields not in (3, 5):
        _fail(path, rows[0][0], 'expected path,x0,y0,x1,y1 (boxes) or '
              f'path,mask_path,ignore_path (masks), got {n_fields} fields')
    boxes: Dict[str, list] = {}
    n_clipped = 0
    for lineno, fields in rows:
        if len(fields) != n_fields:
            _fail(path, lineno, f'expected {n_fields} fields like the first line, '
                  f'got {len(fields)}')
        img_id = fields[0]
        if img_id not in infos:
            _fail(path, lineno, f'image id {img_id!r} is not in image_ids.txt')
        info = infos[img_id]
        if n_fields == 3:
            mask_path, ignore_path = fields[1], fields[2] or None
            if not mask_path:
                _fail(path, lineno, 'empty mask path')
            # One ignore region per image: it may be named on one line only (as
            # wsolevaluation's OpenImages metadata does) or repeated; two different
            # non-empty ignore paths for one image are an error.
            earlier = info.get('ignore_path')
            if ignore_path and earlier and earlier != ignore_path:
                _fail(path, lineno, f'ignore path {ignore_path!r} differs from an '
                      f'earlier line of {img_id!r} ({earlier!r})')
            info.setdefault('mask_paths', []).append(mask_path)
            info['ignore_path'] = ignore_path or earlier
            continue
        x0, y0, x1, y1 = (_parse_number(path, lineno, v) for v in fields[1:])
        if 'meta_size' not in info:
            _fail(path, lineno, f'a box of {img_id!r} needs its image size, which '
                  'image_sizes.txt lacks')
        h, w = info['meta_size']
        if not (0 <= x0 and 0 <= y0 and x1 <= w and y1 <= h):
            if box_policy == 'error':
                _fail(path, lineno, f'box {(x0, y0, x1, y1)} lies outside its image '
                      f'{img_id!r} of size w={w}, h={h}')
            x0, x1 = min(max(x0, 0), w), min(max(x1, 0), w)
            y0, y1 = min(max(y0, 0), h), min(max(y1, 0), h)
            n_clipped += 1
        if not (x0 <= x1 and y0 <= y1):
            _fail(path, lineno, f'degenerate box {(x0, y0, x1, y1)} of {img_id!r} '
                  '(needs x0 <= x1 and y0 <= y1)')
        boxes.setdefault(img_id, []).append((x0, y0, x1, y1))
    if n_clipped:
        logger.warning(f'{path}: clipped {n_clipped} box(es) that lay outside their '
                       "image (box_policy='clip')")
    key = 'mask_paths' if n_fields == 3 else None
    missing = [i for i in order
               if (i not in boxes if key is None else key not in infos[i])]
    if missing:
        raise WSOLMetadataError(f'{path}: {len(missing)} image id(s) of image_ids.txt '
                                f'have no line, e.g. {missing[0]!r}')
    for img_id, b in boxes.items():
        infos[img_id]['ori_gt_bboxes'] = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    return 'masks' if n_fields == 3 else 'boxes'
