"""The one image reader of tedloc_mm: bytes -> (H, W, 3) uint8 BGR, or an error naming
the file.

Every image read goes through :func:`decode_image` / :func:`read_image`: the training
and test pipelines (:class:`~tedloc_mm.datasets.transforms.LoadWSOLImage`), CAM
generation (``tools/generate_cams.py``) and inference (``tedloc_mm.apis``). A file that
cannot be read raises :class:`ImageReadError` (:class:`MissingImageError` when it does
not exist) whose message names the file, the image id where known, and the likely
cause:

==========================  ===========================================================
file                        result
==========================  ===========================================================
missing                     ``MissingImageError`` (also a ``FileNotFoundError``)
0 bytes                     ``ImageReadError``: "0-byte file (interrupted copy or ...)"
truncated JPEG / PNG        ``ImageReadError``: "truncated: no end-of-image marker ..."
not an image                ``ImageReadError`` naming what it looks like (HTML page,
                            Git LFS pointer, ...) and its first bytes
grayscale (8 / 16 bit)      replicated to 3 channels
RGBA / gray + alpha         alpha dropped, colour kept unchanged (as PIL's
                            ``convert('RGB')`` in wsolevaluation, and MMCV's ``'color'``
                            flag): boxes and masks of WSOL data refer to the whole
                            canvas, so nothing is composited
16-bit (PNG / TIFF)         ``round(v * 255 / 65535)`` per channel: 0 -> 0, 65535 -> 255,
                            257 k -> k (OpenCV's ``IMREAD_COLOR`` takes ``v >> 8``,
                            which maps 257 k + 128 (k >= 128) to k + 1)
CMYK JPEG                   converted to BGR by OpenCV's JPEG decoder (Adobe-inverted
                            CMYK, as written by Photoshop and PIL)
PNG named ``.jpg`` etc.     decoded by its content: the extension is never used
EXIF orientation            ignored: pixels as stored, as PIL and wsolevaluation read
                            them (image_sizes.txt and the boxes refer to that layout)
==========================  ===========================================================

Truncation. OpenCV's decoders are not relied on to notice a truncated file: older
OpenCV builds return a partially decoded (grey-filled) JPEG with only a warning on
stderr. Measured here with opencv-python 4.14.0: ``cv2.imdecode`` returned ``None`` for
baseline and progressive JPEGs and for PNGs cut at 30 / 60 / 90 / 99 % of their bytes,
and PIL raised "image file is truncated" for the same JPEGs. We check the container's
end marker instead of decoding a second time with PIL (which would double the decode
cost): a JPEG must contain the end-of-image marker ``FF D9`` after its first
start-of-scan segment (bytes after it are allowed; ``FF D9`` cannot occur inside the
entropy-coded data, where ``FF`` is always followed by ``00`` or a restart marker; the
segments before the scan, where an EXIF thumbnail's own ``FF D9`` lives, are skipped by
their lengths), and a PNG must contain its ``IEND`` chunk. The check is a few
``bytes.rfind`` calls on the buffer already in memory (the markers sit at the end):
measured 7 us for a 94 kB 500 x 375 JPEG and < 1 us for a PNG, against 1.4 ms and
3.5 ms to decode them (2 shared cores, under load).
"""
import os.path as osp
from typing import Optional

import cv2
import numpy as np

#: what a file's first bytes say it is, for the error message of an undecodable file
_SIGNATURES = (
    (b'\xff\xd8\xff', 'JPEG'),
    (b'\x89PNG\r\n\x1a\n', 'PNG'),
    (b'GIF8', 'GIF'),
    (b'BM', 'BMP'),
    (b'II*\x00', 'TIFF'),
    (b'MM\x00*', 'TIFF'),
)
_NOT_IMAGE_HINTS = (
    (b'version https://git-lfs', 'a Git LFS pointer, not the image (run `git lfs pull`)'),
    (b'<', 'a text / HTML / XML file (a failed download that saved an error page?)'),
    (b'PK\x03\x04', 'a zip archive'),
    (b'\x1f\x8b', 'a gzip archive'),
)


#: the file names the tools take for images (a folder given as input is searched for them)
IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png', '.bmp', '.webp', '.tif', '.tiff', '.JPEG',
                  '.JPG', '.PNG')


class ImageReadError(OSError):
    """An image file that cannot be read; the message names the file and the cause.

    Attributes:
        path (str): the file.
        img_id (str or None): its image id, where known.
        reason (str): the likely cause, e.g. ``'0-byte file ...'``.
    """

    def __init__(self, path: str, reason: str, img_id: Optional[str] = None):
        self.path, self.reason, self.img_id = path, reason, img_id
        where = f'{path} (image id {img_id!r})' if img_id is not None else path
        super().__init__(f'cannot read image {where}: {reason}')

    def __reduce__(self):  # picklable, so that it crosses DataLoader worker processes
        return type(self), (self.path, self.reason, self.img_id)


class MissingImageError(ImageReadError, FileNotFoundError):
    """The image file does not exist."""


def image_format(data: bytes) -> Optional[str]:
    """'JPEG', 'PNG', 'GIF', 'BMP', 'TIFF', 'WEBP' from the first bytes, else None."""
    for magic, name in _SIGNATURES:
        if data.startswith(magic):
            return name
    if data[:4] == b'RIFF' and data[8:12] == b'WEBP':
        return 'WEBP'
    return None


def _jpeg_is_complete(data: bytes) -> bool:
    """True if an end-of-image marker follows the first start-of-scan segment."""
    pos = 2  # after SOI (FF D8)
    n = len(data)
    while pos + 4 <= n:
        if data[pos] != 0xFF:
            return False  # not at a marker: the header is damaged
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte before a marker
            pos += 1
            continue
        if marker == 0xDA:  # SOS: entropy-coded data follows until EOI
            return data.rfind(b'\xff\xd9', pos + 2) >= 0  # EOI is near the end
        if marker == 0xD9:  # EOI before any scan: no image data
            return False
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # stand-alone markers
            pos += 2
            continue
        pos += 2 + int.from_bytes(data[pos + 2:pos + 4], 'big')  # skip the segment
    return False


def _png_is_complete(data: bytes) -> bool:
    # the IEND chunk: length 0, type 'IEND'; bytes after it are tolerated
    return data.rfind(b'\x00\x00\x00\x00IEND', 8) >= 0


def _not_image_reason(data: bytes) -> str:
    for magic, what in _NOT_IMAGE_HINTS:
        if data.lstrip()[:len(magic)] == magic:
            return f'not an image: the file is {what}; it starts with {data[:16]!r}'
    return (f'not an image, or a format OpenCV cannot decode; it starts with '
            f'{data[:16]!r}')


def _to_uint8(img: np.ndarray) -> np.ndarray:
    if img.dtype == np.uint8:
        return img
    if img.dtype == np.uint16:
        # round(v * 255 / 65535) == round(v / 257): full scale maps to full scale
        return ((img.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    raise TypeError(f'{img.dtype} pixels')


def decode_image(data: bytes, path: str = '<bytes>', img_id: Optional[str] = None,
                 flag: str = 'color') -> np.ndarray:
    """Decode an encoded image (the bytes of a file) after checking that it is whole.

    Args:
        data: the file's bytes.
        path: the file, for error messages.
        img_id: the image id, for error messages.
        flag: ``'color'``: uint8 BGR (H, W, 3); ``'grayscale'``: uint8 (H, W) (colour
            images converted with OpenCV's BGR -> gray weights).

    Returns:
        np.ndarray: uint8 (H, W, 3) BGR or (H, W), see the module's table.

    Raises:
        ImageReadError: empty, truncated, undecodable, or an unsupported pixel type.
    """
    if flag not in ('color', 'grayscale'):
        raise ValueError(f"flag must be 'color' or 'grayscale', got {flag!r}")
    if len(data) == 0:
        raise ImageReadError(path, '0-byte file (an interrupted copy or download, or a '
                             'placeholder?)', img_id)
    fmt = image_format(data)
    cut = 'truncated: the file ends before its {} (an interrupted copy or download?)'
    if fmt == 'JPEG' and not _jpeg_is_complete(data):
        raise ImageReadError(path, cut.format('JPEG end-of-image marker'), img_id)
    if fmt == 'PNG' and not _png_is_complete(data):
        raise ImageReadError(path, cut.format('PNG IEND chunk'), img_id)
    # IMREAD_UNCHANGED: keep 16 bit and alpha for the conversions below, and skip
    # the EXIF rotation that IMREAD_COLOR would apply
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if img is None or img.size == 0:
        reason = (f'OpenCV cannot decode this {fmt} file (corrupt data?)' if fmt
                  else _not_image_reason(data))
        raise ImageReadError(path, reason, img_id)
    try:
        img = _to_uint8(img)
    except TypeError as e:
        raise ImageReadError(path, f'unsupported pixel type: {e}', img_id) from None
    if img.ndim == 3 and img.shape[2] == 4:
        img = img[..., :3]  # alpha dropped, see the module docstring
    elif img.ndim == 3 and img.shape[2] == 2:  # gray + alpha
        img = img[..., 0]
    elif img.ndim == 3 and img.shape[2] == 1:
        img = img[..., 0]
    if img.ndim == 2:
        return img if flag == 'grayscale' else np.ascontiguousarray(
            np.repeat(img[..., None], 3, axis=2))
    if img.ndim != 3 or img.shape[2] != 3:
        raise ImageReadError(path, f'unsupported image layout {img.shape}', img_id)
    if flag == 'grayscale':
        return cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    return np.ascontiguousarray(img)


def read_image(path: str, img_id: Optional[str] = None, flag: str = 'color',
               backend_args: Optional[dict] = None) -> np.ndarray:
    """Read an image file (local, or any MMEngine file backend) with :func:`decode_image`.

    Raises:
        MissingImageError: the file does not exist.
        ImageReadError: it exists but cannot be read.
    """
    if backend_args is None:
        if not osp.isfile(path):
            raise MissingImageError(path, 'file not found', img_id)
        try:
            with open(path, 'rb') as f:
                data = f.read()
        except OSError as e:
            raise ImageReadError(path, f'{type(e).__name__}: {e}', img_id) from e
    else:
        from mmengine import fileio
        try:
            data = fileio.get(path, backend_args=backend_args)
        except FileNotFoundError:
            raise MissingImageError(path, 'file not found', img_id) from None
        except OSError as e:
            raise ImageReadError(path, f'{type(e).__name__}: {e}', img_id) from e
    return decode_image(data, path, img_id, flag)
