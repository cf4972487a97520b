"""Tests of the synthetic WSOL benchmark generator and its command-line tool.

Every check re-reads what the generator wrote to disk with plain parsing, OpenCV and
NumPy (not with the generator's own helpers), so a wrong file fails a test.
"""
import importlib.util
import os
import os.path as osp

import cv2
import numpy as np
import pytest

from tedloc_mm.tool_errors import UserError
from tedloc_mm.embedded_benchmarks.gliders import (HEAD_COLOURS, HEAD_SHAPES, MAX_CLASSES,
                                               SyntheticWSOLConfig, class_names,
                                               generate_synthetic_wsol)

SMALL = dict(num_classes=3, num_train=4, num_val=2, num_test=3, image_size=64)


def _tree(root):
    """{relative path: bytes} of every file under root."""
    out = {}
    for d, _, files in os.walk(root):
        for f in files:
            p = osp.join(d, f)
            with open(p, 'rb') as fh:
                out[osp.relpath(p, root)] = fh.read()
    return out


def _rows(path):
    with open(path, newline='') as f:
        text = f.read()
    assert '\r' not in text and text.endswith('\n'), path
    return [line.split(',') for line in text[:-1].split('\n')]


def _read_mask(root, rel):
    m = cv2.imread(osp.join(root, rel), cv2.IMREAD_UNCHANGED)
    assert m is not None and m.ndim == 2, rel
    assert set(np.unique(m).tolist()) <= {0, 255}, rel
    return m > 0


def _tight_box(mask):
    ys, xs = np.nonzero(mask)
    return [xs.min(), ys.min(), xs.max(), ys.max()]


@pytest.fixture(scope='module')
def small_set(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('synthetic'))
    generate_synthetic_wsol(root, seed=7, **SMALL)
    return root


def test_same_seed_gives_identical_bytes_and_other_seed_differs(tmp_path, small_set):
    again = str(tmp_path / 'again')
    generate_synthetic_wsol(again, seed=7, **SMALL)
    first, second = _tree(small_set), _tree(again)
    assert sorted(first) == sorted(second)
    assert all(first[k] == second[k] for k in first)

    other = str(tmp_path / 'other')
    generate_synthetic_wsol(other, seed=8, **SMALL)
    third = _tree(other)
    assert sorted(third) == sorted(first)   # same layout ...
    images = [k for k in first if k.startswith('images')]
    assert all(first[k] != third[k] for k in images)   # ... different pictures
    loc = osp.join('metadata', 'test', 'localization.txt')
    assert first[loc] != third[loc]


def test_image_j_does_not_depend_on_the_counts(tmp_path, small_set):
    # each image has its own random stream (seed, split, class, index)
    bigger = str(tmp_path / 'bigger')
    generate_synthetic_wsol(bigger, seed=7, **dict(SMALL, num_train=6))
    small, big = _tree(small_set), _tree(bigger)
    for key, data in small.items():
        if key.startswith(('images', 'masks')):
            assert big[key] == data, key
    assert len([k for k in big if k.startswith('images/train')]) == 6 * 3


def test_metadata_is_complete_and_valid(small_set):
    root = small_set
    names = _rows(osp.join(root, 'metadata', 'class_names.txt'))
    assert len(names) == SMALL['num_classes'] and len(set(map(tuple, names))) == len(names)
    per_class = dict(train=SMALL['num_train'], val=SMALL['num_val'], test=SMALL['num_test'])
    for split, n in per_class.items():
        meta = osp.join(root, 'metadata', split)
        ids = [r[0] for r in _rows(osp.join(meta, 'image_ids.txt'))]
        assert len(ids) == len(set(ids)) == n * SMALL['num_classes']
        labels = {p: int(lab) for p, lab in _rows(osp.join(meta, 'class_labels.txt'))}
        sizes = {p: (int(w), int(h)) for p, w, h in _rows(osp.join(meta, 'image_sizes.txt'))}
        boxes = {}
        for p, *b in _rows(osp.join(meta, 'localization.txt')):
            boxes.setdefault(p, []).append([int(v) for v in b])
        assert set(labels) == set(sizes) == set(boxes) == set(ids)
        assert np.bincount(list(labels.values())).tolist() == [n] * SMALL['num_classes']
        for p in ids:
            img = cv2.imread(osp.join(root, p), cv2.IMREAD_UNCHANGED)
            assert img.shape == (sizes[p][1], sizes[p][0], 3) == (64, 64, 3)
            assert p.startswith(f'images/{split}/')
            for x0, y0, x1, y1 in boxes[p]:
                assert 0 <= x0 < x1 < sizes[p][0] and 0 <= y0 < y1 < sizes[p][1]
        has_masks = osp.isfile(osp.join(meta, 'localization_masks.txt'))
        assert has_masks == (split != 'train')


def test_boxes_are_tight_boxes_of_masks_and_parts_are_small(small_set):
    cfg = SyntheticWSOLConfig(**SMALL)
    root = small_set
    for split in ('val', 'test'):
        meta = osp.join(root, 'metadata', split)
        boxes = {p: [int(v) for v in b] for p, *b in _rows(osp.join(meta, 'localization.txt'))}
        part_boxes = {p: [int(v) for v in b]
                      for p, *b in _rows(osp.join(meta, 'part_localization.txt'))}
        labels = {p: int(lab) for p, lab in _rows(osp.join(meta, 'class_labels.txt'))}
        part_paths = dict(_rows(osp.join(meta, 'part_masks.txt')))
        mask_rows = _rows(osp.join(meta, 'localization_masks.txt'))
        assert len(mask_rows) == len(boxes)
        for img_id, mask_path, ignore_path in mask_rows:
            assert ignore_path == ''   # default: exact masks, no ignore region
            obj, part = _read_mask(root, mask_path), _read_mask(root, part_paths[img_id])
            assert _tight_box(obj) == boxes[img_id]
            assert _tight_box(part) == part_boxes[img_id]
            assert not (part & ~obj).any()          # the head belongs to the object
            x0, y0, x1, y1 = boxes[img_id]
            ratio = part.sum() / ((x1 - x0 + 1) * (y1 - y0 + 1))
            assert part.sum() >= cfg.min_part_pixels and ratio <= cfg.max_part_box_ratio
            # the mask is aligned with the pixels: the head shows its class colour
            img = cv2.imread(osp.join(root, img_id))[..., ::-1].astype(float)
            head = np.array(HEAD_COLOURS[labels[img_id] % len(HEAD_COLOURS)][1])
            assert np.abs(np.median(img[part], 0) - head).max() < 45


def test_heads_tell_classes_apart_and_names_match():
    heads = set()
    for k, name in enumerate(class_names(MAX_CLASSES)):
        colour = HEAD_COLOURS[k % len(HEAD_COLOURS)][0]
        shape_word = next(w for w, _ in HEAD_SHAPES if f' {w}-headed' in name)
        assert name.startswith(colour + ' ')
        heads.add((colour, shape_word))
    assert len(heads) == MAX_CLASSES   # every class has its own (colour, shape) head
    with pytest.raises(ValueError, match='num_classes'):
        SyntheticWSOLConfig(num_classes=MAX_CLASSES + 1).validate()


def test_two_instances_and_ignore_band(tmp_path):
    root = str(tmp_path)
    generate_synthetic_wsol(root, seed=1, num_classes=2, num_train=0, num_val=0,
                            num_test=4, image_size=96, instances=(2, 2), ignore_border=2)
    meta = osp.join(root, 'metadata', 'test')
    boxes = {}
    for p, *b in _rows(osp.join(meta, 'localization.txt')):
        boxes.setdefault(p, []).append([int(v) for v in b])
    assert all(len(b) == 2 for b in boxes.values()) and len(boxes) == 8
    seen = {}
    for img_id, mask_path, ignore_path in _rows(osp.join(meta, 'localization_masks.txt')):
        # wsolevaluation names an image's ignore mask on its first line only
        assert (ignore_path != '') == (img_id not in seen)
        seen.setdefault(img_id, []).append(_read_mask(root, mask_path))
        if ignore_path:
            seen[img_id + '#ignore'] = _read_mask(root, ignore_path)
    for img_id, b in boxes.items():
        a, c = seen[img_id]
        assert not (a & c).any()   # instances do not overlap
        assert sorted([_tight_box(a), _tight_box(c)]) == sorted(b)
        band = seen[img_id + '#ignore']
        union = (a | c).astype(np.uint8)
        expected = cv2.dilate(union, np.ones((5, 5), np.uint8)).astype(bool) & ~(a | c)
        assert (band == expected).all()


def test_reader_of_the_data_pipeline_accepts_the_set(small_set):
    from tedloc_mm.fileio import read_wsol_split
    for split in ('train', 'test'):
        infos = read_wsol_split(osp.join(small_set, 'metadata', split), num_classes=3)
        rows = _rows(osp.join(small_set, 'metadata', split, 'localization.txt'))
        assert [i['img_id'] for i in infos] == [r[0] for r in rows]
        got = np.concatenate([i['ori_gt_bboxes'] for i in infos])
        assert (got == np.array([[int(v) for v in r[1:]] for r in rows])).all()
        assert all(('mask_paths' in i) == (split == 'test') for i in infos)


def test_tool_writes_refuses_overwrite_and_reuses(tmp_path, capsys):
    path = osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'tools',
                    'generate_synthetic_benchmark.py')
    spec = importlib.util.spec_from_file_location('generate_synthetic_benchmark', path)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    out = str(tmp_path / 'set')
    args = ['--out', out, '--num-classes', '2', '--train', '1', '--val', '1', '--test',
            '1', '--image-size', '48', '--seed', '3']
    tool.main(args)
    before = _tree(out)
    assert len([k for k in before if k.startswith('images')]) == 6
    with pytest.raises(UserError, match='overwrite'):
        tool.main(args)
    tool.main(args + ['--reuse'])
    assert 'kept existing' in capsys.readouterr().out
    with pytest.raises(UserError, match='different config'):
        tool.main(args[:-1] + ['4', '--reuse'])
    tool.main(args + ['--overwrite'])
    assert _tree(out) == before
    tool.main(args[:-1] + ['4', '--reuse', '--overwrite'])   # different: replaced
    assert 'wrote' in capsys.readouterr().out.splitlines()[-1]
    assert _tree(out) != before
