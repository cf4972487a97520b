"""Loading transforms of the WSOL pipeline: the image, the pseudo-label CAM, the masks."""
import os.path as osp
from typing import Optional

import cv2
import numpy as np
from mmcv.transforms import BaseTransform, LoadImageFromFile

from tedloc_mm.fileio.cam_store import open_cam_store
from tedloc_mm.registry import TRANSFORMS
from tedloc_mm.fileio.image_io import read_image


@TRANSFORMS.register_module()
class LoadWSOLImage(LoadImageFromFile):
    """MMCV's ``LoadImageFromFile`` through :func:`tedloc_mm.fileio.image_io.read_image`.

    Gives uint8 BGR (H, W, 3) for every image a WSOL data set holds (grayscale, RGBA,
    16-bit, CMYK, a PNG named ``.jpg``; conversions in :mod:`..image_io`), and turns
    every failure (missing, 0-byte, truncated, not an image) into
    :class:`~tedloc_mm.fileio.image_io.ImageReadError` naming the file and the image
    id. The dataset's ``bad_image_policy`` decides whether that error stops the run or
    the image is skipped (see :class:`~tedloc_mm.datasets.WSOLDataset`).

    Required keys: ``img_path``; optional ``img_id``. Added keys: ``img``,
    ``img_shape``, ``ori_shape``.

    Args:
        to_float32 (bool): float32 instead of uint8 pixels. Default False.
        backend_args (dict, optional): MMEngine file backend, as in MMCV's transform.
    """

    def __init__(self, to_float32: bool = False, backend_args: Optional[dict] = None):
        super().__init__(to_float32=to_float32, backend_args=backend_args)

    def transform(self, results: dict) -> dict:
        img = read_image(results['img_path'], results.get('img_id'),
                         backend_args=self.backend_args)
        if self.to_float32:
            img = img.astype(np.float32)
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        return results

    def __repr__(self):
        return (f'{self.__class__.__name__}(to_float32={self.to_float32}, '
                f'backend_args={self.backend_args})')


@TRANSFORMS.register_module()
class LoadCAM(BaseTransform):
    """Read the image's pseudo-label CAM from a CAM store and resize it onto the image.

    Must follow ``LoadWSOLImage`` and precede every geometric transform: the stored
    CAM covers the whole original image, and is resized bilinearly to the image's
    (H, W) so that the geometric transforms move it with the image.

    Required keys: ``img``, ``img_id`` (and ``cam_store`` without the argument).
    Added key: ``cam`` float32 (H, W) in [0, 1].

    Args:
        cam_store (str, optional): directory of a CAM store (``tools/generate_cams.py
            --out``). None (the configs' way): the dataset's ``cam_store``, which
            ``WSOLDataset(cam_store=...)`` puts into each image's results.
    """

    def __init__(self, cam_store: Optional[str] = None):
        self.cam_store = cam_store

    def transform(self, results: dict) -> dict:
        img_id = results['img_id']
        h, w = results['img'].shape[:2]
        ori = results.get('ori_shape')
        if ori is not None and tuple(ori[:2]) != (h, w):
            raise RuntimeError(f'LoadCAM must come before geometric transforms: image '
                               f'{img_id!r} is {(h, w)}, its original shape {ori}')
        store = self.cam_store or results.get('cam_store')
        if store is None:
            raise ValueError(f'LoadCAM has no CAM store for image {img_id!r}: give the '
                             'dataset cam_store=... (or LoadCAM(cam_store=...))')
        cam = open_cam_store(store).get_float(img_id)  # KeyError if missing
        results['cam'] = cv2.resize(cam, (w, h), interpolation=cv2.INTER_LINEAR)
        return results

    def __repr__(self):
        return f'{self.__class__.__name__}(cam_store={self.cam_store!r})'


@TRANSFORMS.register_module()
class LoadWSOLAnnotations(BaseTransform):
    """Check the image against its metadata size and load pixel masks if it has any.

    The masks follow ``wsolevaluation``: ``gt_mask`` is the union of the instance masks
    (pixel > 0), ``ignore_mask`` the ignore region (pixel > 0) minus ``gt_mask``; both
    uint8 (H, W) at the original resolution. Must follow ``LoadWSOLImage``.

    Required keys: ``img``, ``img_id``; optional ``meta_size``, ``mask_paths``,
    ``ignore_path``. Added keys: ``gt_mask``, ``ignore_mask`` (when masks exist).

    Args:
        check_size (bool): fail when the image file's size differs from
            ``image_sizes.txt`` (boxes would be misplaced). Default True.
    """

    def __init__(self, check_size: bool = True):
        self.check_size = check_size

    @staticmethod
    def _read_mask(path, shape, img_id):
        if not osp.isfile(path):
            raise FileNotFoundError(f'mask of {img_id!r} not found: {path}')
        mask = read_image(path, img_id, flag='grayscale')  # ImageReadError naming it
        if mask.shape != tuple(shape):
            raise ValueError(f'mask {path} of {img_id!r} is {mask.shape}, '
                             f'its image {tuple(shape)}')
        return mask > 0

    def transform(self, results: dict) -> dict:
        img_id = results['img_id']
        shape = results['img'].shape[:2]
        meta = results.get('meta_size')
        if self.check_size and meta is not None and tuple(meta) != tuple(shape):
            raise ValueError(f'image {results.get("img_path", img_id)} is (h, w)={shape} '
                             f'but image_sizes.txt says {tuple(meta)}')
        if results.get('mask_paths'):
            gt = np.zeros(shape, bool)
            for path in results['mask_paths']:
                gt |= self._read_mask(path, shape, img_id)
            results['gt_mask'] = gt.astype(np.uint8)
            ignore = np.zeros(shape, bool)
            if results.get('ignore_path'):
                ignore = self._read_mask(results['ignore_path'], shape, img_id) & ~gt
            results['ignore_mask'] = ignore.astype(np.uint8)
        return results

    def __repr__(self):
        return f'{self.__class__.__name__}(check_size={self.check_size})'
