"""The one image reader (tedloc_mm/fileio/image_io.py): pixel values of every format it
converts, and an error naming the file for every file it cannot read."""
import io
import pickle

import cv2
import numpy as np
import pytest
from PIL import Image

from tedloc_mm.fileio.image_io import (ImageReadError, MissingImageError, decode_image,
                                         read_image)
from tedloc_mm.registry import TRANSFORMS


def _rand(h, w, c=3, seed=0):
    shape = (h, w, c) if c else (h, w)
    return np.random.default_rng(seed).integers(0, 256, shape).astype(np.uint8)


def _smooth(h=48, w=64):
    yy, xx = np.mgrid[0:h, 0:w]
    return np.stack([xx * 4 % 256, yy * 5 % 256, (xx + yy) * 2 % 256], -1).astype(np.uint8)


def _encode(img, ext, params=()):
    ok, buf = cv2.imencode(ext, img, list(params))
    assert ok
    return buf.tobytes()


def _write(path, data):
    with open(path, 'wb') as f:
        f.write(data)
    return str(path)


# ----------------------------------------------------------------- correct results
def test_grayscale_is_replicated_to_three_channels(tmp_path):
    gray = _rand(20, 30, c=0)
    img = read_image(_write(tmp_path / 'g.png', _encode(gray, '.png')))
    assert img.shape == (20, 30, 3) and img.dtype == np.uint8
    for c in range(3):
        np.testing.assert_array_equal(img[..., c], gray)


def test_rgba_drops_alpha_and_keeps_colour_even_where_transparent(tmp_path):
    bgra = np.dstack([_rand(16, 24), np.zeros((16, 24), np.uint8)])
    bgra[:8, :, 3] = 255  # top half opaque, bottom half fully transparent
    img = read_image(_write(tmp_path / 'a.png', _encode(bgra, '.png')))
    np.testing.assert_array_equal(img, bgra[..., :3])
    # gray + alpha (PNG type 4, written by PIL): the gray value, replicated
    la = np.stack([_rand(10, 12, c=0, seed=1), _rand(10, 12, c=0, seed=2)], -1)
    buf = io.BytesIO()
    Image.fromarray(la, 'LA').save(buf, 'PNG')
    img = decode_image(buf.getvalue(), 'la.png')
    np.testing.assert_array_equal(img, np.repeat(la[..., :1], 3, axis=2))


def test_16_bit_png_is_scaled_by_255_over_65535_and_rounded(tmp_path):
    # values and their 8-bit results computed by hand: round(v * 255 / 65535)
    v16 = np.array([[0, 128, 129, 257], [32896, 51500, 65279, 65535]], np.uint16)
    want = np.array([[0, 0, 1, 1], [128, 200, 254, 255]], np.uint8)
    # 51500 = 257 * 200 + 100: MMCV / OpenCV's v >> 8 would give 201
    bgr16 = np.dstack([v16, v16[::-1], v16[:, ::-1]])
    img = read_image(_write(tmp_path / 'c16.png', _encode(bgr16, '.png')))
    assert img.dtype == np.uint8
    np.testing.assert_array_equal(img, np.dstack([want, want[::-1], want[:, ::-1]]))
    gray = read_image(_write(tmp_path / 'g16.png', _encode(v16, '.png')))
    np.testing.assert_array_equal(gray, np.repeat(want[..., None], 3, axis=2))


def test_cmyk_jpeg_gives_the_colours_pil_gives(tmp_path):
    # solid colour blocks: JPEG keeps them within a few levels
    colours_rgb = [(200, 30, 40), (20, 180, 60), (30, 60, 220), (240, 240, 240)]
    rgb = np.zeros((32, 128, 3), np.uint8)
    for i, c in enumerate(colours_rgb):
        rgb[:, 32 * i:32 * (i + 1)] = c
    path = str(tmp_path / 'cmyk.jpg')
    Image.fromarray(rgb).convert('CMYK').save(path, 'JPEG', quality=95)
    assert Image.open(path).mode == 'CMYK'
    img = read_image(path)
    assert img.shape == (32, 128, 3)
    pil_bgr = np.asarray(Image.open(path).convert('RGB'))[..., ::-1]
    assert np.abs(img.astype(int) - pil_bgr).max() <= 2
    centre = img[16, 16::32]  # the middle pixel of each block
    assert np.abs(centre.astype(int) - np.array(colours_rgb)[:, ::-1]).max() <= 6


def test_png_with_a_jpg_extension_is_decoded_by_its_content(tmp_path):
    bgr = _rand(12, 18)
    img = read_image(_write(tmp_path / 'really_a_png.jpg', _encode(bgr, '.png')))
    np.testing.assert_array_equal(img, bgr)  # lossless: the PNG's exact pixels


def test_palette_png_equals_pil(tmp_path):
    path = str(tmp_path / 'p.png')
    Image.fromarray(_smooth()[..., ::-1]).convert('P').save(path)
    np.testing.assert_array_equal(read_image(path),
                                  np.asarray(Image.open(path).convert('RGB'))[..., ::-1])


def test_exif_orientation_is_ignored_like_pil_and_wsolevaluation(tmp_path):
    path = str(tmp_path / 'rot.jpg')
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    Image.fromarray(_smooth(48, 64)).save(path, 'JPEG', exif=exif, quality=95)
    assert cv2.imread(path, cv2.IMREAD_COLOR).shape[:2] == (64, 48)  # MMCV's default
    img = read_image(path)
    assert img.shape[:2] == (48, 64) == Image.open(path).size[::-1]


def test_bytes_after_the_end_marker_are_tolerated():
    bgr = _smooth()
    for ext in ('.jpg', '.png'):
        data = _encode(bgr, ext)
        np.testing.assert_array_equal(decode_image(data + b'\x00' * 50), decode_image(data))


def test_grayscale_flag_for_masks():
    mask = (_rand(10, 10, c=0) > 128).astype(np.uint8) * 255
    np.testing.assert_array_equal(decode_image(_encode(mask, '.png'), flag='grayscale'), mask)
    colour = np.dstack([mask, mask, mask])
    np.testing.assert_array_equal(decode_image(_encode(colour, '.png'), flag='grayscale'),
                                  mask)


# ----------------------------------------------------------------- errors
def _jpeg_with_exif_thumbnail(main):
    """A JPEG whose APP1 segment holds a whole thumbnail JPEG (with its own FF D9)."""
    thumb = _encode(cv2.resize(main, (8, 8)), '.jpg')
    payload = b'Exif\x00\x00' + thumb
    app1 = b'\xff\xe1' + (len(payload) + 2).to_bytes(2, 'big') + payload
    data = _encode(main, '.jpg')
    return data[:2] + app1 + data[2:]


@pytest.mark.parametrize('kind', ['baseline', 'progressive', 'exif_thumbnail'])
@pytest.mark.parametrize('keep', [0.3, 0.9, -2])
def test_truncated_jpeg_names_file_id_and_cause(tmp_path, kind, keep):
    main = _smooth(96, 128)
    if kind == 'exif_thumbnail':
        data = _jpeg_with_exif_thumbnail(main)
        assert decode_image(data).shape == (96, 128, 3)  # whole: reads
    else:
        params = [cv2.IMWRITE_JPEG_PROGRESSIVE, 1] if kind == 'progressive' else []
        data = _encode(main, '.jpg', params)
    cut = data[:keep] if keep < 0 else data[:int(len(data) * keep)]
    path = _write(tmp_path / 'cut.jpg', cut)
    with pytest.raises(ImageReadError) as e:
        read_image(path, 'cls/cut.jpg')
    assert str(e.value).startswith(f"cannot read image {path} (image id 'cls/cut.jpg'): ")
    assert e.value.reason.startswith('truncated: the file ends before its JPEG '
                                     'end-of-image marker'), e.value.reason


def test_truncation_is_caught_even_if_the_decoder_returns_a_partial_image(monkeypatch):
    """Older OpenCV builds return a grey-filled partial JPEG with only a warning."""
    data = _encode(_smooth(), '.jpg')
    partial = np.full((48, 64, 3), 128, np.uint8)
    monkeypatch.setattr(cv2, 'imdecode', lambda buf, flag: partial)
    with pytest.raises(ImageReadError, match='half.jpg: truncated'):
        decode_image(data[:len(data) // 2], 'half.jpg')
    assert decode_image(data, 'whole.jpg') is not None  # a whole file still reads


@pytest.mark.parametrize('keep', [0.5, -12])  # -12: the IEND chunk alone is missing
def test_truncated_png(tmp_path, keep):
    data = _encode(_rand(30, 30), '.png')
    cut = data[:keep] if keep < 0 else data[:int(len(data) * keep)]
    path = _write(tmp_path / 'cut.png', cut)
    with pytest.raises(ImageReadError) as e:
        read_image(path)
    assert str(e.value).startswith(f'cannot read image {path}: truncated')
    assert 'PNG IEND chunk' in e.value.reason


@pytest.mark.parametrize('data, words', [
    (b'', '0-byte file'),
    (b'<html><body>404 Not Found</body></html>', 'HTML'),
    (b'version https://git-lfs.github.com/spec/v1\noid sha256:00\nsize 1\n', 'Git LFS'),
    (b'\x00\x01\x02 random bytes \x03' * 8, 'not an image'),
    (b'\xff\xd8\xff\xe0 not really a jpeg', 'truncated'),
])
def test_unreadable_files_name_file_and_cause(tmp_path, data, words):
    path = _write(tmp_path / 'bad.jpg', data)
    with pytest.raises(ImageReadError) as e:
        read_image(path, 'x/bad.jpg')
    assert str(e.value).startswith(f"cannot read image {path} (image id 'x/bad.jpg'): ")
    assert words in e.value.reason


def test_missing_file_is_a_file_not_found_error_naming_it(tmp_path):
    path = str(tmp_path / 'nope.png')
    with pytest.raises(FileNotFoundError, match='nope.png') as e:
        read_image(path)
    assert isinstance(e.value, MissingImageError) and isinstance(e.value, ImageReadError)


def test_errors_survive_pickling_for_dataloader_workers(tmp_path):
    err = ImageReadError('/d/a.jpg', 'truncated: ...', 'a.jpg')
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is ImageReadError and str(back) == str(err) and back.img_id == 'a.jpg'
    miss = pickle.loads(pickle.dumps(MissingImageError('/d/b.jpg', 'file not found')))
    assert isinstance(miss, FileNotFoundError) and '/d/b.jpg' in str(miss)


def test_load_wsol_image_transform(tmp_path):
    from mmengine.registry import DefaultScope
    bgr16 = (_rand(8, 10).astype(np.uint16) * 257)  # 257 k -> k exactly
    path = _write(tmp_path / 'x.png', _encode(bgr16, '.png'))
    with DefaultScope.overwrite_default_scope('tedloc'):
        t = TRANSFORMS.build(dict(type='LoadWSOLImage'))
    out = t(dict(img_path=path, img_id='x.png'))
    np.testing.assert_array_equal(out['img'], (bgr16 // 257).astype(np.uint8))
    assert out['img_shape'] == out['ori_shape'] == (8, 10)
    empty = _write(tmp_path / 'e.png', b'')
    with pytest.raises(ImageReadError, match=r"e\.png \(image id 'cls/e'\): 0-byte"):
        t(dict(img_path=empty, img_id='cls/e'))
