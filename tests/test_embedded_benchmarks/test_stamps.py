"""Tests of the stamp WSOL benchmark generator, on a tiny stamp folder the test makes.

The folder mimics Tux Paint's layout (``animals/birds/*.png`` with a ``cartoon``
subfolder, mirrored copies ``x_mirror.png``), so CI needs no package download. Every
check re-reads the written files with plain parsing, OpenCV and NumPy.
"""
import os
import os.path as osp
import subprocess
import sys

import cv2
import numpy as np
import pytest

from tedloc_mm.embedded_benchmarks import debian_packages
from tedloc_mm.embedded_benchmarks.stamps import generate_stamp_benchmark

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
#: class -> folder, and the pure colour of its fake stamps (RGB)
FAKE = {'bird': ('animals/birds', (255, 0, 0)), 'fish': ('animals/fish', (0, 0, 255)),
        'fruit': ('food/fruit', (255, 0, 255))}
SMALL = dict(classes=('bird', 'fish', 'fruit'), num_train=6, num_val=3, num_test=4,
             image_size=224, backgrounds=('bg0.jpg', 'bg1.png'), image_ext='png')


def _write_rgba(path, rgb, shape_kind, size):
    h, w = size
    img = np.zeros((h, w, 4), np.uint8)
    alpha = np.zeros((h, w), np.uint8)
    if shape_kind == 'disc':
        cv2.ellipse(alpha, (w // 2, h // 2), (w // 2 - 2, h // 2 - 2), 0, 0, 360, 255, -1)
    else:
        alpha[3:h - 3, 5:w - 5] = 255
    img[..., :3] = rgb[::-1]  # BGR
    img[..., 3] = alpha
    os.makedirs(osp.dirname(path), exist_ok=True)
    assert cv2.imwrite(path, img)


@pytest.fixture(scope='module')
def sources(tmp_path_factory):
    root = tmp_path_factory.mktemp('sources')
    stamps, bgs = str(root / 'stamps'), str(root / 'bg')
    for cls, (folder, rgb) in FAKE.items():
        for i in range(6):
            _write_rgba(osp.join(stamps, folder, f'{cls}{i}.png'), rgb,
                        'disc' if i % 2 else 'box', (60 + 7 * i, 90 - 5 * i))
        # a mirrored copy (must stay with its original) and a cartoon (left out)
        _write_rgba(osp.join(stamps, folder, f'{cls}0_mirror.png'), rgb, 'box', (60, 90))
        _write_rgba(osp.join(stamps, folder, 'cartoon', f'{cls}_toon.png'), rgb, 'box',
                    (50, 50))
    # a stamp without alpha: counted as skipped, never used
    os.makedirs(osp.join(stamps, 'animals/birds'), exist_ok=True)
    cv2.imwrite(osp.join(stamps, 'animals/birds', 'noalpha.png'), np.zeros((40, 40, 3), np.uint8))
    os.makedirs(bgs)
    rng = np.random.default_rng(0)
    # green-grey photos: no pixel of a background is one of the stamps' pure colours
    for name, hw in (('bg0.jpg', (500, 700)), ('bg1.png', (600, 480))):
        bg = np.stack([rng.integers(60, 120, hw), rng.integers(100, 200, hw),
                       rng.integers(60, 120, hw)], -1).astype(np.uint8)
        cv2.imwrite(osp.join(bgs, name), cv2.GaussianBlur(bg, (0, 0), 3))
    return stamps, bgs


def _tree(root):
    out = {}
    for d, _, files in os.walk(root):
        for f in files:
            with open(osp.join(d, f), 'rb') as fh:
                out[osp.relpath(osp.join(d, f), root)] = fh.read()
    return out


def _rows(path):
    with open(path, newline='') as f:
        text = f.read()
    assert '\r' not in text and text.endswith('\n'), path
    return [line.split(',') for line in text[:-1].split('\n')]


@pytest.fixture(scope='module')
def small_set(sources, tmp_path_factory):
    out = str(tmp_path_factory.mktemp('stamp_set'))
    counts = generate_stamp_benchmark(out, *sources, seed=3, **SMALL)
    return out, counts


def test_same_seed_gives_identical_bytes_and_other_seed_differs(sources, small_set, tmp_path):
    out, counts = small_set
    again = str(tmp_path / 'again')
    generate_stamp_benchmark(again, *sources, seed=3, **SMALL)
    first, second = _tree(out), _tree(again)
    # 39 images, 21 val/test masks, class names, 5 + 6 + 6 split files, the config
    assert len(first) == 39 + 21 + 1 + 5 + 6 + 6 + 1
    assert first == second
    other = str(tmp_path / 'other')
    generate_stamp_benchmark(other, *sources, seed=4, **SMALL)
    third = _tree(other)
    assert set(third) == set(first)
    changed = [k for k in first if k.startswith('images/') and first[k] != third[k]]
    assert len(changed) > 0.9 * sum(k.startswith('images/') for k in first)
    assert counts == dict(train=18, val=9, test=12, reused=0, skipped_stamps=1)


def test_splits_use_disjoint_stamps_and_keep_mirrored_copies_together(small_set):
    out, _ = small_set
    names = open(osp.join(out, 'metadata', 'class_names.txt')).read().split()
    assert names == ['bird', 'fish', 'fruit']
    used = {}
    for split in ('train', 'val', 'test'):
        labels = dict(_rows(osp.join(out, 'metadata', split, 'class_labels.txt')))
        for img_id, stamp in _rows(osp.join(out, 'metadata', split, 'stamps.txt')):
            cls = names[int(labels[img_id])]
            # the stamp comes from its class's folder, never a cartoon or the alpha-less one
            assert stamp.startswith(FAKE[cls][0] + '/') and 'cartoon' not in stamp, stamp
            assert 'noalpha' not in stamp
            used.setdefault(split, {}).setdefault(cls, set()).add(stamp)
    for cls in names:
        sets = [used[s][cls] for s in ('train', 'val', 'test')]
        assert all(sets), (cls, sets)
        assert not (sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2]), (cls, sets)
        base = [{osp.basename(s).replace('_mirror', '') for s in st} for st in sets]
        assert not (base[0] & base[1] or base[0] & base[2] or base[1] & base[2]), base


def test_masks_are_the_pasted_pixels_and_boxes_are_tight(small_set):
    out, _ = small_set
    for split in ('val', 'test'):
        boxes = {r[0]: list(map(int, r[1:])) for r in
                 _rows(osp.join(out, 'metadata', split, 'localization.txt'))}
        labels = {r[0]: int(r[1]) for r in
                  _rows(osp.join(out, 'metadata', split, 'class_labels.txt'))}
        sizes = {r[0]: (int(r[1]), int(r[2])) for r in
                 _rows(osp.join(out, 'metadata', split, 'image_sizes.txt'))}
        rows = _rows(osp.join(out, 'metadata', split, 'localization_masks.txt'))
        assert [r[0] for r in rows] == list(boxes) and all(r[2] == '' for r in rows)
        for img_id, mask_id, _ in rows:
            img = cv2.imread(osp.join(out, img_id))[..., ::-1].astype(int)
            mask = cv2.imread(osp.join(out, mask_id), cv2.IMREAD_UNCHANGED)
            assert img.shape[:2] == mask.shape == (224, 224) and sizes[img_id] == (224, 224)
            assert set(np.unique(mask).tolist()) == {0, 255}
            ys, xs = np.nonzero(mask)
            assert boxes[img_id] == [xs.min(), ys.min(), xs.max(), ys.max()]
            # pixels of the stamp's pure colour (the background has none) = the mask
            colour = np.array(list(FAKE.values())[labels[img_id]][1])
            pure = np.abs(img - colour).max(axis=2) < 40
            iou = (pure & (mask > 0)).sum() / (pure | (mask > 0)).sum()
            assert iou > 0.95, (img_id, iou)


def test_reuse_keeps_an_identical_set_and_refuses_a_different_one(sources, small_set):
    out, _ = small_set
    assert generate_stamp_benchmark(out, *sources, seed=3, reuse=True, **SMALL)['reused'] == 1
    with pytest.raises(FileExistsError, match='different'):
        generate_stamp_benchmark(out, *sources, seed=5, **SMALL)


def test_too_few_stamps_is_a_clear_error(sources, tmp_path):
    stamps, bgs = sources
    with pytest.raises(FileNotFoundError, match='animals/insects'):
        generate_stamp_benchmark(str(tmp_path / 'x'), stamps, bgs,
                                 **dict(SMALL, classes=('bird', 'insect')))


def test_fetch_without_apt_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setattr(debian_packages.shutil, 'which', lambda name: None)
    with pytest.raises(debian_packages.PackageFetchError,
                       match=r'tuxpaint-stamps-default.*apt-get download'):
        debian_packages.fetch_debian_package('tuxpaint-stamps-default', str(tmp_path))


def test_tool_writes_the_set_and_names_a_missing_background(sources, tmp_path):
    stamps, bgs = sources

    def tool(*extra):
        return subprocess.run(
            [sys.executable, 'tools/generate_stamp_benchmark.py', '--out', str(tmp_path / 'cli'),
             '--stamp-root', stamps, '--background-root', bgs, '--classes', 'bird', 'fish',
             '--train', '2', '--val', '1', '--test', '1', '--seed', '1', *extra],
            cwd=REPO, capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=REPO))

    # the default backgrounds (Debian wallpapers) are not in this folder
    proc = tool()
    assert proc.returncode != 0 and 'mate/nature/Aqua.jpg not found' in proc.stderr
    proc = tool('--backgrounds', 'bg0.jpg')
    assert proc.returncode == 0, proc.stderr
    ids = _rows(str(tmp_path / 'cli' / 'metadata' / 'test' / 'image_ids.txt'))
    assert len(ids) == 2 and all(i[0].endswith('.jpg') for i in ids)
