"""LoadWSOLAnnotations: the masks it builds and each mask error naming file and image."""
import cv2
import numpy as np
import pytest

from tedloc_mm.datasets import LoadWSOLAnnotations


def results_for(tmp_path, masks, ignore=None, shape=(6, 8)):
    """A loaded 6x8 image with instance mask files (arrays or raw bytes) and an ignore."""
    paths = []
    for i, m in enumerate(masks):
        p = tmp_path / f'mask{i}.png'
        if isinstance(m, bytes):
            p.write_bytes(m)
        elif m is not None:
            cv2.imwrite(str(p), m)
        paths.append(str(p))
    out = dict(img=np.zeros(shape + (3, ), np.uint8), img_id='cls/img_7.jpg',
               img_path='/data/cls/img_7.jpg', mask_paths=paths)
    if ignore is not None:
        p = tmp_path / 'ignore.png'
        cv2.imwrite(str(p), ignore)
        out['ignore_path'] = str(p)
    return out


def test_masks_union_and_ignore_minus_gt(tmp_path):
    a = np.zeros((6, 8), np.uint8)
    a[1:3, 1:4] = 255
    b = np.zeros((6, 8), np.uint8)
    b[2:5, 3:7] = 1  # any value > 0 is foreground
    ignore = np.zeros((6, 8), np.uint8)
    ignore[0:4, 0:8] = 255
    out = LoadWSOLAnnotations().transform(results_for(tmp_path, [a, b], ignore))
    union = (a > 0) | (b > 0)
    np.testing.assert_array_equal(out['gt_mask'], union.astype(np.uint8))
    np.testing.assert_array_equal(out['ignore_mask'], ((ignore > 0) & ~union).astype(np.uint8))
    assert out['gt_mask'].dtype == np.uint8 and out['gt_mask'].sum() == 6 + 12 - 1


def test_missing_mask_names_file_and_image(tmp_path):
    res = results_for(tmp_path, [np.zeros((6, 8), np.uint8), None])
    with pytest.raises(FileNotFoundError) as err:
        LoadWSOLAnnotations().transform(res)
    assert 'mask1.png' in str(err.value) and 'cls/img_7.jpg' in str(err.value)


@pytest.mark.parametrize('content', [b'', b'not a png at all'])
def test_unreadable_mask_names_file_and_image(tmp_path, content):
    res = results_for(tmp_path, [content])
    with pytest.raises((OSError, ValueError)) as err:
        LoadWSOLAnnotations().transform(res)
    assert 'mask0.png' in str(err.value) and 'cls/img_7.jpg' in str(err.value)


def test_mask_of_another_size_names_both_sizes(tmp_path):
    res = results_for(tmp_path, [np.zeros((6, 8), np.uint8), np.zeros((8, 6), np.uint8)])
    with pytest.raises(ValueError, match=r'mask1.png.*cls/img_7.jpg.*\(8, 6\).*\(6, 8\)'):
        LoadWSOLAnnotations().transform(res)
    # the ignore mask is checked the same way
    res = results_for(tmp_path, [np.zeros((6, 8), np.uint8)], ignore=np.zeros((3, 8), np.uint8))
    with pytest.raises(ValueError, match=r'ignore.png.*\(3, 8\)'):
        LoadWSOLAnnotations().transform(res)


def test_image_size_disagreeing_with_metadata(tmp_path):
    res = results_for(tmp_path, [])
    res['meta_size'] = (6, 9)
    with pytest.raises(ValueError, match=r'/data/cls/img_7.jpg is \(h, w\)=\(6, 8\).*'
                                         r'image_sizes.txt says \(6, 9\)'):
        LoadWSOLAnnotations().transform(res)
    assert 'gt_mask' not in LoadWSOLAnnotations(check_size=False).transform(res)
