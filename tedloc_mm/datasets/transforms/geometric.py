"""Geometric transforms that move the image, the CAM, the boxes and the masks together.

MMCV's ``RandomFlip`` and ``Resize`` already move ``img`` and ``gt_bboxes``; the
subclasses here add the WSOL keys they do not know: the float CAM ``cam`` (bilinear:
it is a continuous map, MMCV's ``gt_seg_map`` path would resize it with nearest) and
the pixel masks ``gt_mask`` / ``ignore_mask`` (nearest). MMPretrain's
``RandomResizedCrop`` moves neither boxes nor CAM, so its crop sampling is reused and
the cropping of the other keys is added.

Box convention: x0, y0, x1, y1 with x1, y1 exclusive (continuous pixel edges), as
MMCV's flip (``x -> w - x``) assumes. Boxes are clipped to a crop; a box entirely
outside it becomes a zero-area box (rows are kept so that ``gt_bboxes`` still
corresponds to ``ori_gt_bboxes``).
"""
import mmcv
import numpy as np
from mmcv.transforms import BaseTransform
from mmcv.transforms import RandomFlip as _MMCVRandomFlip
from mmcv.transforms import Resize as _MMCVResize
from mmpretrain.datasets.transforms import RandomResizedCrop as _MMPreRandomResizedCrop

from tedloc_mm.registry import TRANSFORMS

#: float maps (bilinear) and binary masks (nearest) that follow the image
FLOAT_MAP_KEYS = ('cam', )
MASK_KEYS = ('gt_mask', 'ignore_mask')


def _resize_maps(results: dict, size_wh, backend='cv2'):
    for key in FLOAT_MAP_KEYS + MASK_KEYS:
        if results.get(key) is not None:
            interp = 'bilinear' if key in FLOAT_MAP_KEYS else 'nearest'
            results[key] = mmcv.imresize(results[key], size_wh, interpolation=interp,
                                         backend=backend)


def crop_and_resize(results: dict, x0: int, y0: int, w: int, h: int, out_wh=None,
                    interpolation='bilinear', backend='cv2') -> dict:
    """Crop the window [x0, x0+w) x [y0, y0+h) out of every spatial key, then
    optionally resize it to ``out_wh``; boxes are shifted, scaled and clipped."""
    window = np.array([x0, y0, x0 + w - 1, y0 + h - 1])  # mmcv.imcrop is inclusive
    for key in ('img', ) + FLOAT_MAP_KEYS + MASK_KEYS:
        if results.get(key) is not None:
            results[key] = mmcv.imcrop(results[key], window)
    sx = sy = 1.0
    if out_wh is not None and tuple(out_wh) != (w, h):
        sx, sy = out_wh[0] / w, out_wh[1] / h
        results['img'] = mmcv.imresize(results['img'], tuple(out_wh),
                                       interpolation=interpolation, backend=backend)
        _resize_maps(results, tuple(out_wh), backend)
    if results.get('gt_bboxes') is not None:
        b = np.asarray(results['gt_bboxes'], np.float32) - np.array([x0, y0, x0, y0],
                                                                    np.float32)
        b = np.clip(b, 0, np.array([w, h, w, h], np.float32))
        results['gt_bboxes'] = b * np.array([sx, sy, sx, sy], np.float32)
    sf = results.get('scale_factor', (1.0, 1.0))
    results['scale_factor'] = (sf[0] * sx, sf[1] * sy)
    results['img_shape'] = results['img'].shape[:2]
    return results


@TRANSFORMS.register_module()
class WSOLRandomFlip(_MMCVRandomFlip):
    """MMCV's ``RandomFlip`` (image, boxes) that also flips ``cam`` and the masks."""

    def _flip(self, results: dict) -> None:
        super()._flip(results)
        for key in FLOAT_MAP_KEYS + MASK_KEYS:
            if results.get(key) is not None:
                results[key] = mmcv.imflip(results[key], direction=results['flip_direction'])


@TRANSFORMS.register_module()
class WSOLResize(_MMCVResize):
    """MMCV's ``Resize`` (image, boxes) that also resizes ``cam`` (bilinear) and the
    masks (nearest) to the new image shape."""

    def transform(self, results: dict) -> dict:
        results = super().transform(results)
        h, w = results['img'].shape[:2]
        _resize_maps(results, (w, h), self.backend)
        return results


@TRANSFORMS.register_module()
class WSOLRandomResizedCrop(_MMPreRandomResizedCrop):
    """MMPretrain's ``RandomResizedCrop`` (same crop sampling and arguments) that also
    crops and resizes ``cam``, the masks and the boxes."""

    def transform(self, results: dict) -> dict:
        off_h, off_w, th, tw = self.rand_crop_params(results['img'])
        return crop_and_resize(results, off_w, off_h, tw, th, tuple(self.scale[::-1]),
                               self.interpolation, self.backend)


@TRANSFORMS.register_module()
class WSOLRandomCrop(BaseTransform):
    """Random crop of a fixed size (the ``wsolevaluation`` recipe: resize to 256, crop
    224), moving image, ``cam``, masks and boxes. An image smaller than the crop
    along a side is cropped to its own size along it.

    Args:
        crop_size (int | tuple): (h, w) or one int for both.
    """

    def __init__(self, crop_size):
        self.crop_size = (crop_size, crop_size) if isinstance(crop_size, int) else tuple(crop_size)

    def transform(self, results: dict) -> dict:
        h, w = results['img'].shape[:2]
        ch, cw = min(self.crop_size[0], h), min(self.crop_size[1], w)
        y0 = np.random.randint(0, h - ch + 1)
        x0 = np.random.randint(0, w - cw + 1)
        return crop_and_resize(results, x0, y0, cw, ch)

    def __repr__(self):
        return f'{self.__class__.__name__}(crop_size={self.crop_size})'
