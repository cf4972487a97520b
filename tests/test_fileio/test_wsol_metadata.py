"""WSOL metadata reading: the dataset, multi-box / mask splits and every metadata error."""
import logging
import os
import os.path as osp
import re

import cv2
import numpy as np
import pytest
from mmcv.transforms import LoadImageFromFile
from mmengine.logging import MMLogger

from tedloc_mm.datasets import LoadWSOLAnnotations, WSOLDataset
from tedloc_mm.fileio import WSOLMetadataError, read_wsol_split
from tedloc_mm.registry import DATASETS

# id, label, (w, h), boxes
IMAGES = [
    ('a/img0.png', 0, (40, 30), [(1, 2, 20, 25)]),
    ('a/img1.png', 0, (32, 32), [(0, 0, 10, 10), (12.5, 3, 32, 31)]),
    ('b/img2.png', 1, (50, 20), [(5, 5, 45, 15)]),
]


def write_split(root, images=IMAGES, split='train', names=('cat', 'dog'), extra=None):
    """Images under root, metadata under root/metadata; returns the split dir."""
    d = osp.join(root, 'metadata', split)
    os.makedirs(d, exist_ok=True)
    with open(osp.join(root, 'metadata', 'class_names.txt'), 'w') as f:
        f.write('\n'.join(names) + '\n')
    files = dict(image_ids=[], class_labels=[], image_sizes=[], localization=[])
    for img_id, label, (w, h), boxes in images:
        os.makedirs(osp.dirname(osp.join(root, img_id)), exist_ok=True)
        cv2.imwrite(osp.join(root, img_id), np.full((h, w, 3), 128, np.uint8))
        files['image_ids'].append(img_id)
        files['class_labels'].append(f'{img_id},{label}')
        files['image_sizes'].append(f'{img_id},{w},{h}')
        files['localization'] += [f'{img_id},' + ','.join(map(str, b)) for b in boxes]
    files.update(extra or {})
    for name, lines in files.items():
        with open(osp.join(d, name + '.txt'), 'w') as f:
            f.write(''.join(line + '\n' for line in lines))
    return d


def test_dataset_reads_boxes_labels_and_class_names(tmp_path):
    write_split(str(tmp_path))
    ds = DATASETS.build(dict(type='CUBWSOLDataset', data_root=str(tmp_path), split='train'))
    assert isinstance(ds, WSOLDataset)
    assert ds.metainfo['classes'] == ('cat', 'dog')
    assert len(ds) == 3
    for i, (img_id, label, (w, h), boxes) in enumerate(IMAGES):
        info = ds.get_data_info(i)
        assert info['img_id'] == img_id
        assert info['img_path'] == osp.join(str(tmp_path), img_id)
        assert info['gt_label'] == label
        assert info['meta_size'] == (h, w)
        assert info['ori_gt_bboxes'].dtype == np.float64
        np.testing.assert_array_equal(info['ori_gt_bboxes'], np.array(boxes, float))
        np.testing.assert_allclose(info['gt_bboxes'], np.array(boxes))


def test_masks_union_and_ignore_minus_mask(tmp_path):
    root = str(tmp_path)
    img_id = 'a/img0.png'
    m1 = np.zeros((30, 40), np.uint8)
    m1[0:10, 0:10] = 255
    m2 = np.zeros((30, 40), np.uint8)
    m2[20:30, 30:40] = 255
    ign = np.zeros((30, 40), np.uint8)
    ign[5:15, 5:15] = 255  # overlaps m1 on [5:10, 5:10]
    os.makedirs(osp.join(root, 'masks'))
    for name, m in (('m1', m1), ('m2', m2), ('ign', ign)):
        cv2.imwrite(osp.join(root, 'masks', name + '.png'), m)
    masks = [f'{img_id},masks/m1.png,masks/ign.png', f'{img_id},masks/m2.png,masks/ign.png']
    write_split(root, images=IMAGES[:1], split='test',
                extra=dict(localization_masks=masks))
    ds = WSOLDataset(data_root=root, split='test')
    info = ds.get_data_info(0)
    np.testing.assert_array_equal(info['ori_gt_bboxes'], [[1, 2, 20, 25]])  # boxes too
    results = LoadImageFromFile()(dict(info))
    results = LoadWSOLAnnotations()(results)
    want_gt = (m1 > 0) | (m2 > 0)
    np.testing.assert_array_equal(results['gt_mask'], want_gt.astype(np.uint8))
    np.testing.assert_array_equal(results['ignore_mask'],
                                  ((ign > 0) & ~want_gt).astype(np.uint8))
    assert results['ignore_mask'][5:10, 5:10].sum() == 0


def _lines(images=IMAGES):
    ids = [i[0] for i in images]
    return dict(
        image_ids=list(ids),
        class_labels=[f'{i},{lab}' for i, lab, _, _ in images],
        image_sizes=[f'{i},{w},{h}' for i, _, (w, h), _ in images],
        localization=[f'{i},' + ','.join(map(str, b)) for i, _, _, bs in images for b in bs])


def _bad(file, edit):
    lines = _lines()
    edit(lines[file])
    return {file: lines[file]}


ERROR_CASES = {
    # name: (edit of one file, expected file, expected line (None: no line) , words)
    'id missing from class_labels': (_bad('class_labels', lambda l: l.pop(1)),
                                     'class_labels.txt', None, 'have no line'),
    'id missing from image_sizes': (_bad('image_sizes', lambda l: l.pop(2)),
                                    'image_sizes.txt', None, "'b/img2.png'"),
    'id missing from localization': (_bad('localization', lambda l: l.pop(0)),
                                     'localization.txt', None, "'a/img0.png'"),
    'unknown id in class_labels': (_bad('class_labels', lambda l: l.append('zz.png,0')),
                                   'class_labels.txt', 4, 'not in image_ids'),
    'unknown id in localization': (_bad('localization',
                                        lambda l: l.insert(1, 'zz.png,0,0,1,1')),
                                   'localization.txt', 2, 'not in image_ids'),
    'duplicate id': (_bad('image_ids', lambda l: l.append('a/img0.png')),
                     'image_ids.txt', 4, 'duplicate'),
    'duplicate label line': (_bad('class_labels', lambda l: l.append('a/img1.png,1')),
                             'class_labels.txt', 4, 'duplicate'),
    'unknown class': (_bad('class_labels', lambda l: l.__setitem__(2, 'b/img2.png,2')),
                      'class_labels.txt', 3, 'unknown class 2'),
    'negative class': (_bad('class_labels', lambda l: l.__setitem__(0, 'a/img0.png,-1')),
                       'class_labels.txt', 1, 'unknown class'),
    'box outside image': (_bad('localization',
                               lambda l: l.__setitem__(3, 'b/img2.png,5,5,51,15')),
                          'localization.txt', 4, 'outside'),
    'negative box coordinate': (_bad('localization',
                                     lambda l: l.__setitem__(0, 'a/img0.png,-1,2,20,25')),
                                'localization.txt', 1, 'outside'),
    'degenerate box': (_bad('localization',
                            lambda l: l.__setitem__(0, 'a/img0.png,20,2,1,25')),
                       'localization.txt', 1, 'degenerate'),
    'not a number': (_bad('image_sizes', lambda l: l.__setitem__(1, 'a/img1.png,3x,32')),
                     'image_sizes.txt', 2, 'expected a number'),
    'wrong field count': (_bad('class_labels', lambda l: l.__setitem__(0, 'a/img0.png')),
                          'class_labels.txt', 1, 'fields'),
}


@pytest.mark.parametrize('case', sorted(ERROR_CASES))
def test_metadata_errors_name_file_and_line(tmp_path, case):
    extra, file, line, words = ERROR_CASES[case]
    split_dir = write_split(str(tmp_path), extra=extra)
    with pytest.raises(WSOLMetadataError) as e:
        WSOLDataset(data_root=str(tmp_path), split='train')
    msg = str(e.value)
    where = osp.join(split_dir, file) + (f':{line}:' if line else ':')
    assert msg.startswith(where), msg
    assert words in msg


class _Records(logging.Handler):
    """What MMLogger emits (it does not propagate to pytest's caplog)."""

    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def test_box_policy_clip_clips_counts_and_logs(tmp_path):
    def two_outside(lines):
        lines[3] = 'b/img2.png,-3,5,60,15'       # x0 < 0 and x1 > w = 50
        lines[2] = 'a/img1.png,12.5,3,32,40'     # y1 > h = 32
    split_dir = write_split(str(tmp_path), extra=_bad('localization', two_outside))
    logger = MMLogger.get_current_instance()
    records = _Records()
    logger.addHandler(records)
    try:
        infos = read_wsol_split(split_dir, num_classes=2, box_policy='clip')
    finally:
        logger.removeHandler(records)
    np.testing.assert_array_equal(infos[2]['ori_gt_bboxes'], [[0, 5, 50, 15]])
    np.testing.assert_array_equal(infos[1]['ori_gt_bboxes'], [[0, 0, 10, 10],
                                                              [12.5, 3, 32, 32]])
    np.testing.assert_array_equal(infos[0]['ori_gt_bboxes'], [[1, 2, 20, 25]])
    path = osp.join(split_dir, 'localization.txt')
    assert records.messages == [f'{path}: clipped 2 box(es) that lay outside their image '
                                "(box_policy='clip')"], records.messages


def test_missing_image_error_and_documented_skip(tmp_path):
    write_split(str(tmp_path))
    os.remove(osp.join(str(tmp_path), 'a/img1.png'))
    with pytest.raises(FileNotFoundError, match=re.escape('a/img1.png')):
        WSOLDataset(data_root=str(tmp_path), split='train')
    ds = WSOLDataset(data_root=str(tmp_path), split='train', skip_missing_images=True)
    assert [ds.get_data_info(i)['img_id'] for i in range(len(ds))] == ['a/img0.png',
                                                                  'b/img2.png']
    assert ds.num_skipped_images == 1


def test_unreadable_image_and_size_mismatch_fail_with_the_file(tmp_path):
    write_split(str(tmp_path))
    bad = osp.join(str(tmp_path), 'a/img1.png')
    with open(bad, 'wb') as f:
        f.write(b'not an image')
    ds = WSOLDataset(data_root=str(tmp_path), split='train')
    with pytest.raises(Exception, match=re.escape(bad)):
        LoadImageFromFile()(dict(ds.get_data_info(1)))
    # an image whose file size differs from image_sizes.txt
    cv2.imwrite(osp.join(str(tmp_path), 'b/img2.png'), np.zeros((21, 50, 3), np.uint8))
    results = LoadImageFromFile()(dict(ds.get_data_info(2)))
    with pytest.raises(ValueError, match='image_sizes.txt'):
        LoadWSOLAnnotations()(results)


def test_missing_class_names_file_is_a_clear_error(tmp_path):
    write_split(str(tmp_path))
    os.remove(osp.join(str(tmp_path), 'metadata', 'class_names.txt'))
    with pytest.raises(FileNotFoundError, match='class-names file'):
        WSOLDataset(data_root=str(tmp_path), split='train')
    ds = WSOLDataset(data_root=str(tmp_path), split='train', class_names_file=False)
    assert len(ds) == 3


def test_ignore_path_named_on_one_line_only_applies_to_the_image(tmp_path):
    """wsolevaluation's OpenImages style: the ignore mask on the first line of an image."""
    img_id = 'a/img0.png'
    masks = [f'{img_id},masks/m1.png,masks/ign.png', f'{img_id},masks/m2.png,']
    split_dir = write_split(str(tmp_path), images=IMAGES[:1], split='test',
                            extra=dict(localization_masks=masks))
    info = WSOLDataset(data_root=str(tmp_path), split='test',
                       check_images=False).get_data_info(0)
    assert [osp.basename(p) for p in info['mask_paths']] == ['m1.png', 'm2.png']
    assert osp.basename(info['ignore_path']) == 'ign.png'
    # two different ignore masks for one image: an error naming file and line
    masks[1] = f'{img_id},masks/m2.png,masks/other.png'
    write_split(str(tmp_path), images=IMAGES[:1], split='test',
                extra=dict(localization_masks=masks))
    with pytest.raises(WSOLMetadataError) as e:
        WSOLDataset(data_root=str(tmp_path), split='test', check_images=False)
    assert str(e.value).startswith(osp.join(split_dir, 'localization_masks.txt') + ':2:')
