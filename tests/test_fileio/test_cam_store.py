"""CAM store: round trip, shards, resume after an interrupted write, missing ids, LoadCAM."""
import os.path as osp

import cv2
import numpy as np
import pytest

from tedloc_mm.datasets import LoadCAM
from tedloc_mm.fileio.cam_store import CAMStore, CAMStoreWriter, quantize_cam


def smooth_cam(seed, shape=(64, 64)):
    rng = np.random.default_rng(seed)
    return cv2.resize(rng.normal(size=(8, 8)).astype(np.float32), shape[::-1],
                      interpolation=cv2.INTER_LINEAR) * 5 - 3


def test_quantize_is_minmax_then_uint8():
    cam = smooth_cam(0)
    q = quantize_cam(cam, 64)
    want = np.rint((cam - cam.min()) / (cam.max() - cam.min()) * 255)
    np.testing.assert_array_equal(q, want.astype(np.uint8))
    assert q.min() == 0 and q.max() == 255
    np.testing.assert_array_equal(quantize_cam(np.full((10, 7), 3.0), 16), 0)
    with pytest.raises(ValueError, match="'img/x.jpg'"):
        quantize_cam(np.full((4, 4), np.nan), 16, 'img/x.jpg')


def test_round_trip_several_shards(tmp_path):
    root = str(tmp_path / 'store')
    cams = {f'cls{k}/im{i}.jpg': smooth_cam(10 * k + i, (64, 64)) for k in range(2)
            for i in range(5)}
    ids = sorted(cams)
    with CAMStoreWriter(root, 'part-0', 64) as w0, CAMStoreWriter(root, 'part-1', 64) as w1:
        for j, i in enumerate(ids):
            (w0 if j % 2 else w1).write(i, cams[i])
    store = CAMStore(root)
    assert len(store) == len(ids) and sorted(store.ids()) == ids
    for i in ids:
        np.testing.assert_array_equal(store[i], quantize_cam(cams[i], 64))
        got = store.get_float(i)
        ref = (cams[i] - cams[i].min()) / (cams[i].max() - cams[i].min())
        assert np.abs(got - ref).max() <= 0.5 / 255 + 1e-6
    assert osp.getsize(osp.join(root, 'part-0.u8')) == 5 * 64 * 64  # bytes per image
    with pytest.raises(KeyError, match='no CAM for image id .*nope.jpg'):
        store['nope.jpg']
    assert 'nope.jpg' not in store


def test_resume_after_interrupted_write_and_resolution_check(tmp_path):
    root = str(tmp_path / 's')
    with CAMStoreWriter(root, 'p', 16) as w:
        w.write('a', smooth_cam(1, (32, 32)))
        w.write('b', smooth_cam(2, (32, 32)))
    # a writer killed mid-row: half a row of data and a partial id line
    with open(osp.join(root, 'p.u8'), 'ab') as f:
        f.write(b'\x07' * 100)
    with open(osp.join(root, 'p.ids'), 'ab') as f:
        f.write(b'c-partial')
    store = CAMStore(root)
    assert sorted(store.ids()) == ['a', 'b']
    with CAMStoreWriter(root, 'p', 16) as w:
        assert w.num_rows == 2
        w.write('c', smooth_cam(3, (32, 32)))
    store = CAMStore(root)
    assert sorted(store.ids()) == ['a', 'b', 'c']
    np.testing.assert_array_equal(store['c'], quantize_cam(smooth_cam(3, (32, 32)), 16))
    np.testing.assert_array_equal(store['a'], quantize_cam(smooth_cam(1, (32, 32)), 16))
    with pytest.raises(ValueError, match='resolution 16'):
        CAMStoreWriter(root, 'q', 32)


def test_duplicate_id_across_shards_is_an_error(tmp_path):
    root = str(tmp_path / 's')
    for shard in ('p0', 'p1'):
        with CAMStoreWriter(root, shard, 8) as w:
            w.write('same.jpg', smooth_cam(0, (8, 8)))
    with pytest.raises(ValueError, match="'same.jpg' is stored more than once"):
        CAMStore(root)


def test_load_cam_resizes_to_the_image_and_fails_on_missing_id(tmp_path):
    root = str(tmp_path / 's')
    cam = np.zeros((64, 64), np.float32)
    cam[:, 32:] = 1.0  # right half hot
    with CAMStoreWriter(root, 'p', 64) as w:
        w.write('x.jpg', cam)
    results = dict(img=np.zeros((30, 50, 3), np.uint8), img_id='x.jpg', ori_shape=(30, 50))
    out = LoadCAM(root)(results)['cam']
    assert out.shape == (30, 50) and out.dtype == np.float32
    assert out[:, :24].max() == 0 and out[:, 26:].min() == 1.0
    with pytest.raises(KeyError, match='y.jpg'):
        LoadCAM(root)(dict(img=np.zeros((30, 50, 3), np.uint8), img_id='y.jpg'))
    with pytest.raises(RuntimeError, match='before geometric transforms'):
        LoadCAM(root)(dict(img=np.zeros((10, 50, 3), np.uint8), img_id='x.jpg',
                           ori_shape=(30, 50)))
