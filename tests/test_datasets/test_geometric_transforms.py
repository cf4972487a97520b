"""Geometric transforms keep image, CAM, boxes and masks aligned; PackWSOLInputs fields."""
import numpy as np
import pytest
import torch
from mmcv.transforms import Compose
from mmengine.runner import set_random_seed

import tedloc_mm  # noqa: F401
from tedloc_mm.registry import TRANSFORMS
from tedloc_mm.structures import META_KEYS

H, W = 120, 160
OBJ = (30, 40, 90, 100)  # x0, y0, x1, y1 (x1, y1 exclusive)


def build(cfgs):
    return Compose([TRANSFORMS.build(c) for c in cfgs])


def sample():
    img = np.full((H, W, 3), 60, np.uint8)
    x0, y0, x1, y1 = OBJ
    img[y0:y1, x0:x1] = (0, 0, 250)  # a red object (BGR)
    obj = np.zeros((H, W), np.uint8)
    obj[y0:y1, x0:x1] = 1
    box = np.array([OBJ], np.float32)
    return dict(img=img, img_id='o.png', img_path='/x/o.png', ori_shape=(H, W),
                img_shape=(H, W), gt_label=3, cam=obj.astype(np.float32), gt_mask=obj.copy(),
                ignore_mask=1 - obj, gt_bboxes=box, ori_gt_bboxes=box.astype(np.float64))


def tight_box(binary):
    ys, xs = np.nonzero(binary)
    if ys.size == 0:
        return None
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32)


def assert_aligned(r, tol):
    """Image, box, CAM and masks show the object at the same place (to ``tol`` px);
    where a crop removed it, none of them shows it."""
    assert r['cam'].shape == r['gt_mask'].shape == r['img'].shape[:2]
    assert (r['ignore_mask'] + r['gt_mask'] == 1).mean() > 0.97
    obj_pixels = r['img'][..., 2] > 125
    box = r['gt_bboxes'][0]
    tb = tight_box(obj_pixels)
    if tb is None:  # the object was cropped away: no box area, no CAM, no mask left
        assert box[2] - box[0] <= tol or box[3] - box[1] <= tol
        assert tight_box(r['cam'] > 0.5) is None
        assert tight_box(r['gt_mask'] > 0) is None
        return
    np.testing.assert_allclose(box, tb, atol=tol)  # box encloses exactly the object
    np.testing.assert_allclose(tight_box(r['cam'] > 0.5), tb, atol=tol)
    np.testing.assert_allclose(tight_box(r['gt_mask'] > 0), tb, atol=tol)


@pytest.mark.parametrize('direction', ['horizontal', 'vertical'])
def test_flip_moves_everything(direction):
    r = TRANSFORMS.build(dict(type='WSOLRandomFlip', prob=1.0, direction=direction))(sample())
    assert r['flip'] and r['flip_direction'] == direction
    x0, y0, x1, y1 = OBJ
    want = [W - x1, y0, W - x0, y1] if direction == 'horizontal' else [x0, H - y1, x1, H - y0]
    np.testing.assert_array_equal(r['gt_bboxes'][0], want)
    assert_aligned(r, tol=0)


@pytest.mark.parametrize('scale,keep_ratio', [((224, 224), False), ((100, 60), False),
                                              ((224, 224), True)])
def test_resize_moves_everything(scale, keep_ratio):
    r = TRANSFORMS.build(dict(type='WSOLResize', scale=scale, keep_ratio=keep_ratio))(sample())
    assert r['cam'].dtype == np.float32
    assert ((r['cam'] > 0.01) & (r['cam'] < 0.99)).any()  # bilinear, not nearest
    assert set(np.unique(r['gt_mask'])) <= {0, 1}  # nearest
    assert_aligned(r, tol=1.5)


@pytest.mark.parametrize('seed', range(6))
def test_random_resized_crop_and_flip_move_everything(seed):
    set_random_seed(seed)
    pipeline = build([
        dict(type='WSOLRandomResizedCrop', scale=224, crop_ratio_range=(0.2, 1.0)),
        dict(type='WSOLRandomFlip', prob=0.5, direction='horizontal'),
    ])
    r = pipeline(sample())
    assert r['img'].shape[:2] == (224, 224) and tuple(r['img_shape']) == (224, 224)
    assert_aligned(r, tol=2.5)


@pytest.mark.parametrize('seed', range(6))
def test_resize_then_random_crop_moves_everything(seed):
    set_random_seed(seed)
    pipeline = build([
        dict(type='WSOLResize', scale=(256, 256)),
        dict(type='WSOLRandomCrop', crop_size=224),
    ])
    r = pipeline(sample())
    assert r['img'].shape[:2] == (224, 224)
    assert_aligned(r, tol=1.5)
    # the crop's offset is the same for image and boxes: unscaled pixel shift
    np.testing.assert_allclose(r['scale_factor'], (256 / W, 256 / H))


@pytest.mark.parametrize('window', [(100, 0, 60, 40), (0, 0, 30, 120), (92, 30, 40, 60)])
def test_a_crop_without_the_object_leaves_no_box_cam_or_mask(window):
    """Windows right of / above, left of, and right of the object (x 30..89, y 40..99):
    the box collapses to no area, and the CAM and the masks are empty too."""
    from tedloc_mm.datasets.transforms.geometric import crop_and_resize
    x0, y0, w, h = window
    r = crop_and_resize(sample(), x0, y0, w, h, out_wh=(64, 48))
    assert r['img'].shape[:2] == (48, 64)
    assert tight_box(r['img'][..., 2] > 125) is None
    assert_aligned(r, tol=0)


def test_pack_wsol_inputs_writes_the_structures_fields():
    r = sample()
    r['pseudo_label_map'] = np.full((30, 40), -1, np.int64)
    r['pseudo_label_map'][0, 0] = 1
    r = TRANSFORMS.build(dict(type='WSOLResize', scale=(80, 60)))(r)
    packed = TRANSFORMS.build(dict(type='PackWSOLInputs'))(r)
    inputs, ds = packed['inputs'], packed['data_samples']
    assert inputs.shape == (3, 60, 80) and inputs.dtype == torch.uint8
    assert ds.gt_label.tolist() == [3]
    assert ds.gt_bboxes.dtype == torch.float32 and ds.gt_bboxes.shape == (1, 4)
    np.testing.assert_allclose(ds.gt_bboxes[0].numpy(), [15, 20, 45, 50])
    assert ds.gt_mask.dtype == torch.uint8 and ds.gt_mask.shape == (60, 80)
    assert ds.ignore_mask.dtype == torch.uint8
    assert ds.pseudo_label_map.dtype == torch.int64 and ds.pseudo_label_map[0, 0] == 1
    assert set(META_KEYS) <= set(ds.metainfo)
    assert ds.img_id == 'o.png' and ds.ori_shape == (H, W) and ds.img_shape == (60, 80)
    assert ds.ori_gt_bboxes.dtype == np.float64
    np.testing.assert_array_equal(ds.ori_gt_bboxes, [OBJ])
    np.testing.assert_allclose(ds.scale_factor, (0.5, 0.5))
    assert ds.flip is False and ds.flip_direction is None


def test_pack_without_boxes_gives_empty_arrays():
    r = sample()
    for key in ('gt_bboxes', 'ori_gt_bboxes', 'gt_mask', 'ignore_mask', 'cam'):
        r.pop(key)
    ds = TRANSFORMS.build(dict(type='PackWSOLInputs'))(r)['data_samples']
    assert ds.gt_bboxes.shape == (0, 4) and ds.ori_gt_bboxes.shape == (0, 4)
    assert 'gt_mask' not in ds and 'pseudo_label_map' not in ds
