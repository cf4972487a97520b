"""Maps and true masks to MMSegmentation labels: the binarisation, and bad input
(a split without masks, a map of the wrong size, a class id outside the list, a bad
label file) stopping with an error that names the item."""
import importlib.util
import os.path as osp

import numpy as np
import pytest

from tiny_seg_data import make_wsol

from tedloc_mm.datasets.transforms import CheckSegLabel
from tedloc_mm.fileio.seg_labels import (SegLabelError, check_label, read_label_png,
                                         voc_palette, write_label_png)
from tedloc_mm.fileio.seg_layout import SegExportWriter
from tedloc_mm.pseudo_labels.seg_masks import (image_classes, map_labels, map_to_label,
                                               split_infos, true_mask_labels)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _tool(path, name):
    spec = importlib.util.spec_from_file_location(name, osp.join(REPO, path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def wsol(tmp_path):
    return make_wsol(str(tmp_path / 'wsol'), size=8)


def test_band_follows_the_box_protocols_binarisation():
    # a ramp 0..1 over 11 columns: uint8 values 0 25 51 76 102 127 153 178 204 229 255;
    # foreground > int(0.6 * 255) = 153, not background > int(0.3 * 255) = 76
    ramp = np.tile(np.linspace(0, 1, 11), (2, 1))
    label = map_to_label(ramp, 0, 1, (2, 11), fg_thr=0.6, bg_thr=0.3)
    assert label[0].tolist() == [0, 0, 0, 0, 255, 255, 255, 1, 1, 1, 1]
    binary = map_to_label(ramp, 2, 3, (2, 11), fg_thr=0.6)
    assert binary[1].tolist() == [0] * 7 + [3] * 4


def test_true_masks_of_a_split_with_masks(wsol):
    infos, names = split_infos(wsol, 'val')
    labels = {img_id: label for img_id, label, _ in true_mask_labels(infos, 2, wsol, 'val')}
    expect = np.zeros((8, 8), np.uint8)
    expect[3:7, 1:5] = 2  # image 1 is class b (label 2); its square (tiny_seg_data.square)
    np.testing.assert_array_equal(labels['images/val/b/x1.jpg'], expect)


def test_exporting_a_split_without_masks_names_it(wsol, tmp_path, capsys):
    tool = _tool('tools/dataset_converters/wsol_to_mmseg.py', 'wsol_to_mmseg')
    from tedloc_mm.tool_errors import UserError  # one error line, exit 2, at the tool's top
    with pytest.raises(UserError, match=r"split 'train' has no true masks"):
        tool.main(['true-masks', '--data-root', wsol, '--split', 'train',
                   '--out', str(tmp_path / 'gt')])


def test_a_map_of_the_wrong_size_is_named(wsol):
    infos, _ = split_infos(wsol, 'val')
    maps = [(infos[0]['img_id'], np.random.rand(8, 8)),      # the image's size
            (infos[1]['img_id'], np.random.rand(8, 6))]      # neither it nor a 64 grid
    labels = map_labels(infos, 2, maps, image_classes(infos, 'gt'), 0.5, None, (64, ),
                        'score maps X')
    next(labels)
    with pytest.raises(SegLabelError, match=r"score maps X: the map of image "
                       r"'images/val/b/x1.jpg' is \(8, 6\)"):
        next(labels)


def test_a_map_of_the_stores_grid_is_accepted(wsol):
    infos, _ = split_infos(wsol, 'val')
    maps = [(info['img_id'], np.random.rand(64, 64)) for info in infos]
    labels = list(map_labels(infos, 2, maps, image_classes(infos, 'gt'), 0.5, None, (64, ),
                             'CAM store'))
    assert [label.shape for _, label, _ in labels] == [(8, 8), (8, 8)]


def test_a_class_id_outside_the_list_is_named(wsol, tmp_path):
    infos, _ = split_infos(wsol, 'val')
    preds = tmp_path / 'pred.txt'
    preds.write_text('images/val/a/x0.jpg,0\nimages/val/b/x1.jpg,2\n')  # 2 classes: 0, 1
    classes = image_classes(infos, 'pred', str(preds))
    maps = [(info['img_id'], np.random.rand(8, 8)) for info in infos]
    labels = map_labels(infos, 2, maps, classes, 0.5, None, (), 'src')
    next(labels)
    with pytest.raises(SegLabelError, match=r"image 'images/val/b/x1.jpg': class id 2 is "
                       r'outside the 2 classes'):
        next(labels)


def test_label_values_outside_the_classes_are_named(tmp_path):
    path = str(tmp_path / 'x.png')
    write_label_png(path, np.array([[0, 1], [7, 255]], np.uint8), voc_palette(3))
    label = read_label_png(path)
    assert label.tolist() == [[0, 1], [7, 255]]  # indices, not colours
    with pytest.raises(SegLabelError, match=r'x.png: label values \[7\] are outside the '
                       r'3 classes'):
        check_label(label, 3, path)


def test_check_seg_label_names_the_file():
    check = CheckSegLabel(num_classes=3)
    ok = dict(gt_seg_map=np.array([[0, 2], [255, 1]], np.uint8), seg_map_path='a.png',
              img_path='a.jpg', ori_shape=(2, 2))
    assert check(dict(ok)) is not None
    with pytest.raises(SegLabelError, match=r'label a.png: label values \[3\]'):
        check(dict(ok, gt_seg_map=np.array([[0, 3], [255, 1]], np.uint8)))
    with pytest.raises(SegLabelError, match='label a.png: .*one channel'):
        check(dict(ok, gt_seg_map=np.zeros((2, 2, 3), np.uint8)))
    with pytest.raises(SegLabelError, match=r'label a.png is \(1, 2\) .* a.jpg is \(2, 2\)'):
        check(dict(ok, gt_seg_map=np.zeros((1, 2), np.uint8)))


def test_writer_refuses_ids_with_two_extensions(wsol, tmp_path):
    writer = SegExportWriter(str(tmp_path / 'out'), wsol, ['a', 'b'])
    label = np.zeros((2, 2), np.uint8)
    with pytest.raises(SegLabelError, match=r"different extensions .*'p/x.jpg', 'p/y.png'"):
        writer.write_split('val', [('p/x.jpg', label, {}), ('p/y.png', label, {})])


def test_voc_palette_is_pascal_vocs():
    assert voc_palette(9) == [[0, 0, 0], [128, 0, 0], [0, 128, 0], [128, 128, 0],
                              [0, 0, 128], [128, 0, 128], [0, 128, 128], [128, 128, 128],
                              [64, 0, 0]]
