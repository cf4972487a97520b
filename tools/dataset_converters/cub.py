"""Convert the original CUB-200-2011 release to the WSOL metadata format.

Reads ``images.txt``, ``image_class_labels.txt``, ``bounding_boxes.txt`` (x, y, w, h),
``train_test_split.txt`` (1 = train) and ``classes.txt`` of ``CUB_200_2011/`` plus the
image headers (for ``image_sizes.txt``), and writes::

    OUT/class_names.txt                       "Black footed Albatross", ... (200 lines)
    OUT/{train,test}/image_ids.txt            001.Black_footed_Albatross/...jpg
    OUT/{train,test}/class_labels.txt         path,label (0-based)
    OUT/{train,test}/image_sizes.txt          path,w,h
    OUT/{train,test}/localization.txt         path,x0,y0,x1,y1 (x1 = x + w, y1 = y + h)

Optionally ``--val-per-class N`` moves N training images per class (the first N in
``images.txt`` order) to ``OUT/val``; the paper's validation set is instead the
separate CUBV2 set of ``wsolevaluation`` (use its metadata for the val split).

Example::

    python tools/dataset_converters/cub.py data/CUB_200_2011 --out data/CUB_200_2011/metadata
"""
import argparse
import os
import os.path as osp
from collections import defaultdict

from PIL import Image
from tedloc_mm.tool_errors import UserError, add_debug_argument, run_tool  # noqa: E402


class CUBFormatError(UserError, ValueError):
    """A file of the CUB release is wrong; the message names the file and line."""


def _read_table(path, n_fields, kinds):
    if not osp.isfile(path):
        raise FileNotFoundError(f'CUB release file not found: {path}')
    table = {}
    with open(path, encoding='utf-8') as f:
        for lineno, line in enumerate(f, 1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != n_fields:
                raise CUBFormatError(f'{path}:{lineno}: expected {n_fields} '
                                     f'space-separated fields, got {len(fields)}')
            try:
                key = int(fields[0])
                values = [k(v) for k, v in zip(kinds, fields[1:])]
            except ValueError as e:
                raise CUBFormatError(f'{path}:{lineno}: {e}') from None
            if key in table:
                raise CUBFormatError(f'{path}:{lineno}: duplicate id {key}')
            table[key] = (lineno, values[0] if len(values) == 1 else values)
    return table


def class_display_name(folder_name: str) -> str:
    """'001.Black_footed_Albatross' -> 'Black footed Albatross'."""
    return folder_name.split('.', 1)[-1].replace('_', ' ')


def convert_cub(cub_root: str, out_dir: str, val_per_class: int = 0) -> dict:
    """Write the metadata; return the number of images per split."""
    f = lambda name: osp.join(cub_root, name)  # noqa: E731
    images = _read_table(f('images.txt'), 2, [str])
    labels = _read_table(f('image_class_labels.txt'), 2, [int])
    boxes = _read_table(f('bounding_boxes.txt'), 5, [float] * 4)
    is_train = _read_table(f('train_test_split.txt'), 2, [int])
    classes = _read_table(f('classes.txt'), 2, [str])
    class_ids = sorted(classes)
    if class_ids != list(range(1, len(class_ids) + 1)):
        raise CUBFormatError(f'{f("classes.txt")}: class ids must be 1..K')
    for name, table in (('image_class_labels.txt', labels), ('bounding_boxes.txt', boxes),
                        ('train_test_split.txt', is_train)):
        for key, (lineno, _) in table.items():
            if key not in images:
                raise CUBFormatError(f'{f(name)}:{lineno}: image id {key} is not in '
                                     'images.txt')
        for key, (lineno, _) in images.items():
            if key not in table:
                raise CUBFormatError(f'{f(name)}: no line for image id {key} '
                                     f'(images.txt:{lineno})')

    splits = defaultdict(list)
    taken = defaultdict(int)
    for key in sorted(images, key=lambda k: images[k][0]):
        lineno, path = images[key]
        label_line, label = labels[key]
        if label not in classes:
            raise CUBFormatError(f'{f("image_class_labels.txt")}:{label_line}: unknown '
                                 f'class {label}')
        img_file = osp.join(cub_root, 'images', path)
        try:
            with Image.open(img_file) as im:
                w, h = im.size
        except (OSError, ValueError) as e:
            raise CUBFormatError(f'{f("images.txt")}:{lineno}: cannot read image '
                                 f'{img_file}: {e}') from None
        box_line, (x, y, bw, bh) = boxes[key]
        x0, y0, x1, y1 = x, y, x + bw, y + bh
        if not (0 <= x0 <= x1 <= w and 0 <= y0 <= y1 <= h):
            raise CUBFormatError(f'{f("bounding_boxes.txt")}:{box_line}: box x={x}, y={y}, '
                                 f'w={bw}, h={bh} lies outside image {path} ({w}x{h})')
        split_line, flag = is_train[key]
        if flag not in (0, 1):
            raise CUBFormatError(f'{f("train_test_split.txt")}:{split_line}: flag must be '
                                 f'0 or 1, got {flag}')
        split = 'test' if flag == 0 else 'train'
        if split == 'train' and taken[label] < val_per_class:
            taken[label] += 1
            split = 'val'
        splits[split].append((path, label - 1, w, h, (x0, y0, x1, y1)))

    os.makedirs(out_dir, exist_ok=True)
    with open(osp.join(out_dir, 'class_names.txt'), 'w') as fo:
        fo.writelines(class_display_name(classes[k][1]) + '\n' for k in class_ids)
    fmt = lambda v: f'{v:g}'  # noqa: E731
    for split, rows in splits.items():
        d = osp.join(out_dir, split)
        os.makedirs(d, exist_ok=True)
        with open(osp.join(d, 'image_ids.txt'), 'w') as fi, \
                open(osp.join(d, 'class_labels.txt'), 'w') as fc, \
                open(osp.join(d, 'image_sizes.txt'), 'w') as fs, \
                open(osp.join(d, 'localization.txt'), 'w') as fl:
            for path, label, w, h, box in rows:
                fi.write(f'{path}\n')
                fc.write(f'{path},{label}\n')
                fs.write(f'{path},{w},{h}\n')
                fl.write(f'{path},' + ','.join(fmt(v) for v in box) + '\n')
    return {split: len(rows) for split, rows in splits.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('cub_root', help='the CUB_200_2011 directory of the release')
    parser.add_argument('--out', default=None,
                        help='metadata directory (default: CUB_ROOT/metadata)')
    parser.add_argument('--val-per-class', type=int, default=0,
                        help='move N train images per class to a val split (default 0)')
    add_debug_argument(parser)
    args = parser.parse_args(argv)
    out = args.out or osp.join(args.cub_root, 'metadata')
    counts = convert_cub(args.cub_root, out, args.val_per_class)
    print(f'wrote {out}: ' + ', '.join(f'{k} {v}' for k, v in sorted(counts.items())))


if __name__ == '__main__':
    raise SystemExit(run_tool(main))
