"""tools/dataset_converters/cub.py on a small fabricated CUB_200_2011 release."""
import importlib.util
import os
import os.path as osp

import cv2
import numpy as np
import pytest

from tedloc_mm.datasets import WSOLDataset

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def load_converter():
    spec = importlib.util.spec_from_file_location(
        'cub_converter', osp.join(REPO, 'tools', 'dataset_converters', 'cub.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# image id, path, class id (1-based), (w, h), box (x, y, w, h), is_train
RELEASE = [
    (1, '001.Black_footed_Albatross/Black_Footed_Albatross_0001_796111.jpg', 1, (60, 40),
     (10.0, 5.0, 30.0, 20.0), 1),
    (2, '001.Black_footed_Albatross/Black_Footed_Albatross_0002_55.jpg', 1, (50, 50),
     (0.0, 0.0, 50.0, 50.0), 0),
    (3, '002.Laysan_Albatross/Laysan_Albatross_0001_545.jpg', 2, (70, 30),
     (3.5, 2.0, 10.0, 7.5), 1),
    (4, '002.Laysan_Albatross/Laysan_Albatross_0002_1027.jpg', 2, (40, 45),
     (1.0, 1.0, 38.0, 40.0), 1),
]
CLASSES = ['001.Black_footed_Albatross', '002.Laysan_Albatross']


def fabricate(root, release=RELEASE):
    os.makedirs(root, exist_ok=True)
    for _, path, _, (w, h), _, _ in release:
        p = osp.join(root, 'images', path)
        os.makedirs(osp.dirname(p), exist_ok=True)
        cv2.imwrite(p, np.full((h, w, 3), 90, np.uint8))
    tables = {
        'images.txt': [f'{i} {p}' for i, p, *_ in release],
        'image_class_labels.txt': [f'{i} {c}' for i, _, c, *_ in release],
        'bounding_boxes.txt': [f'{i} ' + ' '.join(map(str, b)) for i, _, _, _, b, _ in release],
        'train_test_split.txt': [f'{r[0]} {r[5]}' for r in release],
        'classes.txt': [f'{k + 1} {n}' for k, n in enumerate(CLASSES)],
    }
    for name, lines in tables.items():
        with open(osp.join(root, name), 'w') as f:
            f.write('\n'.join(lines) + '\n')


def read(path):
    with open(path) as f:
        return f.read().splitlines()


def test_converter_writes_wsol_metadata_that_the_dataset_reads(tmp_path):
    cub = str(tmp_path / 'CUB_200_2011')
    fabricate(cub)
    out = str(tmp_path / 'meta')
    counts = load_converter().convert_cub(cub, out)
    assert counts == {'train': 3, 'test': 1}
    assert read(osp.join(out, 'class_names.txt')) == ['Black footed Albatross',
                                                      'Laysan Albatross']
    train = [r for r in RELEASE if r[5] == 1]
    assert read(osp.join(out, 'train', 'image_ids.txt')) == [r[1] for r in train]
    assert read(osp.join(out, 'train', 'class_labels.txt')) == [f'{r[1]},{r[2] - 1}'
                                                                for r in train]
    assert read(osp.join(out, 'train', 'image_sizes.txt')) == [
        f'{r[1]},{r[3][0]},{r[3][1]}' for r in train]
    ds = WSOLDataset(data_root=osp.join(cub, 'images'), metadata_root=out, split='train')
    for i, (_, path, cls, _, (x, y, w, h), _) in enumerate(train):
        info = ds.get_data_info(i)
        assert info['img_id'] == path and info['gt_label'] == cls - 1
        np.testing.assert_array_equal(info['ori_gt_bboxes'], [[x, y, x + w, y + h]])
    test = WSOLDataset(data_root=osp.join(cub, 'images'), metadata_root=out, split='test')
    assert test.get_data_info(0)['img_id'] == RELEASE[1][1]


def test_converter_val_per_class_moves_first_train_images(tmp_path):
    cub = str(tmp_path / 'CUB')
    fabricate(cub)
    counts = load_converter().convert_cub(cub, str(tmp_path / 'm'), val_per_class=1)
    assert counts == {'train': 1, 'val': 2, 'test': 1}
    assert read(str(tmp_path / 'm' / 'val' / 'image_ids.txt')) == [RELEASE[0][1],
                                                                   RELEASE[2][1]]


@pytest.mark.parametrize('file,edit,where', [
    ('bounding_boxes.txt', lambda l: l[:2] + l[3:], 'bounding_boxes.txt: no line for image id 3'),
    ('image_class_labels.txt', lambda l: l + ['9 1'], 'image_class_labels.txt:5:'),
    ('image_class_labels.txt', lambda l: l[:1] + ['2 3'] + l[2:], 'image_class_labels.txt:2:'),
    ('bounding_boxes.txt', lambda l: l[:1] + ['2 10 0 45 50'] + l[2:], 'bounding_boxes.txt:2:'),
    ('images.txt', lambda l: l + ['1 x.jpg'], 'images.txt:5: duplicate id 1'),
])
def test_converter_errors_name_file_and_line(tmp_path, file, edit, where):
    cub = str(tmp_path / 'CUB')
    fabricate(cub)
    path = osp.join(cub, file)
    lines = edit(read(path))
    with open(path, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    conv = load_converter()
    with pytest.raises(conv.CUBFormatError) as e:
        conv.convert_cub(cub, str(tmp_path / 'm'))
    assert where in str(e.value)


def test_converter_unreadable_image(tmp_path):
    cub = str(tmp_path / 'CUB')
    fabricate(cub)
    with open(osp.join(cub, 'images', RELEASE[2][1]), 'wb') as f:
        f.write(b'garbage')
    conv = load_converter()
    with pytest.raises(conv.CUBFormatError, match='images.txt:3: cannot read image'):
        conv.convert_cub(cub, str(tmp_path / 'm'))
