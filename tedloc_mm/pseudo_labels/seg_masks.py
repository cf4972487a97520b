"""Segmentation labels of a WSOL split: from its true masks, or from a localizer's maps
(pseudo-masks), in the convention of :mod:`tedloc_mm.fileio.seg_labels`.

A map becomes a label exactly as the WSOL box protocol binarises it
(:mod:`tedloc_mm.evaluation.box_protocol`): bicubic resize to the image's size, min-max
normalisation, ``uint8(map * 255)``, foreground strictly above ``int(thr * max8)``. So
``fg_thr`` = the localizer's ``wsol/best_thr`` of validation gives the very region whose
box the validation scored. With ``bg_thr < fg_thr`` the pixels between the two
thresholds become 255 (ignored by MMSegmentation's loss): an uncertain band for training
labels. Labels that are *scored* must have no band (``IoUMetric`` counts a predicted
255 as a miss).

Map sources, each yielding ``(image id, map)`` in the split's order: a CAM store
(:func:`cam_store_maps`), wsolevaluation score maps (:func:`scoremap_maps`) or any
mapping, e.g. a localizer's maps from ``WSOLInferencer`` (done by the export tool).
"""
import os.path as osp
from typing import Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple

import cv2
import numpy as np

from tedloc_mm.evaluation.box_protocol import prepare_map, quantize_map
from tedloc_mm.evaluation.scoremap_dir import load_scoremap, read_predictions, scoremap_path
from tedloc_mm.fileio.cam_store import CAMStore
from tedloc_mm.fileio.class_names import read_class_names
from tedloc_mm.fileio.seg_labels import IGNORE_INDEX, SegLabelError
from tedloc_mm.fileio.wsol_metadata import read_wsol_split

#: one label: (image id, uint8 (H, W) label, record for seg_meta.json)
Label = Tuple[str, np.ndarray, dict]


def split_infos(data_root: str, split: str, metadata_root: Optional[str] = None
                ) -> Tuple[List[dict], List[str]]:
    """(per-image dicts of a WSOL split, its class names); labels range-checked by
    :func:`read_wsol_split`."""
    metadata_root = metadata_root or osp.join(data_root, 'metadata')
    names_file = osp.join(metadata_root, 'class_names.txt')
    names = read_class_names(names_file)
    infos = read_wsol_split(osp.join(metadata_root, split), num_classes=len(names),
                            class_names_file=names_file)
    return infos, names


def _check_class(class_index, num_classes: int, img_id: str) -> int:
    if not 0 <= int(class_index) < num_classes:
        raise SegLabelError(f'image {img_id!r}: class id {int(class_index)} is outside the '
                            f'{num_classes} classes of the list (0..{num_classes - 1})')
    return int(class_index)


def binarize_map(pred_map: np.ndarray, size_hw: Tuple[int, int], thr: float) -> np.ndarray:
    """bool (H, W): the box protocol's foreground of ``pred_map`` at CAM threshold
    ``thr`` after resizing to ``size_hw``."""
    map01, finite = prepare_map(pred_map, tuple(size_hw))
    if not finite:
        raise SegLabelError('the map contains NaN or inf')
    map8 = quantize_map(map01)
    return map8 > int(thr * int(map8.max()))


def map_to_label(pred_map: np.ndarray, class_index: int, num_classes: int,
                 size_hw: Tuple[int, int], fg_thr: float, bg_thr: Optional[float] = None,
                 img_id: str = '?') -> np.ndarray:
    """uint8 (H, W) label of one image from its map.

    Args:
        pred_map: float (h, w) map of the whole image, any size and range.
        class_index: 0-based WSOL class of the foreground (predicted or true).
        num_classes: K, the number of WSOL classes.
        size_hw: the label's size, the image's original (H, W).
        fg_thr: CAM threshold in [0, 1); pixels above it are ``class_index + 1``.
        bg_thr: pixels at or below it are background (0), pixels between the two 255.
            None or equal to ``fg_thr``: no band (a binary mask).
        img_id: named in errors.
    """
    class_index = _check_class(class_index, num_classes, img_id)
    bg_thr = fg_thr if bg_thr is None else bg_thr
    if not 0 <= bg_thr <= fg_thr < 1:
        raise SegLabelError(f'thresholds must satisfy 0 <= bg_thr <= fg_thr < 1, got '
                            f'bg_thr={bg_thr}, fg_thr={fg_thr}')
    try:
        fg = binarize_map(pred_map, size_hw, fg_thr)
        not_bg = binarize_map(pred_map, size_hw, bg_thr) if bg_thr < fg_thr else fg
    except ValueError as err:
        raise SegLabelError(f'image {img_id!r}: {err}') from err
    label = np.zeros(tuple(size_hw), np.uint8)
    label[not_bg] = IGNORE_INDEX
    label[fg] = class_index + 1
    return label


def check_map_size(shape: Sequence[int], img_hw: Tuple[int, int],
                   square_sides: Sequence[int], img_id: str, source: str) -> None:
    """A map must cover the whole image: be the image's (H, W), or a square grid whose
    side the source is known to use (a CAM store's resolution, score maps' 224)."""
    shape = tuple(int(s) for s in shape)
    if shape == tuple(img_hw) or (len(shape) == 2 and shape[0] == shape[1]
                                  and shape[0] in square_sides):
        return
    raise SegLabelError(f'{source}: the map of image {img_id!r} is {shape} (h, w); expected '
                        f'the image size {tuple(img_hw)} or a square grid of side '
                        f'{list(square_sides)} covering the whole image')


def map_labels(infos: List[dict], num_classes: int, maps: Iterable[Tuple[str, np.ndarray]],
               classes: Mapping[str, int], fg_thr: float, bg_thr: Optional[float],
               square_sides: Sequence[int], source: str,
               scores: Optional[Mapping[str, float]] = None) -> Iterator[Label]:
    """Labels of the images of ``infos`` from ``(image id, map)`` pairs and a class per
    image; size and class checked per image."""
    by_id = {info['img_id']: info for info in infos}
    for img_id, pred_map in maps:
        if img_id not in by_id:
            raise SegLabelError(f'{source}: image {img_id!r} is not in the split')
        size_hw = by_id[img_id]['meta_size']
        check_map_size(np.shape(pred_map), size_hw, square_sides, img_id, source)
        label = map_to_label(pred_map, classes[img_id], num_classes, size_hw, fg_thr, bg_thr,
                             img_id=img_id)
        record = dict(cls=int(classes[img_id]))
        if scores is not None:
            record['score'] = round(float(scores[img_id]), 5)
        yield img_id, label, record


def mask_to_label(mask: np.ndarray, class_index: int, num_classes: int,
                  ignore: Optional[np.ndarray] = None, img_id: str = '?') -> np.ndarray:
    """uint8 label of a true mask (bool (H, W)) of class ``class_index``; ``ignore``
    (bool (H, W), e.g. CUB's ignore masks) becomes 255 outside the foreground."""
    class_index = _check_class(class_index, num_classes, img_id)
    label = np.zeros(mask.shape, np.uint8)
    if ignore is not None:
        label[ignore & ~mask] = IGNORE_INDEX
    label[mask] = class_index + 1
    return label


def _read_mask(path: str, size_hw: Tuple[int, int], img_id: str) -> np.ndarray:
    """bool (H, W) of a mask PNG (> 127, the wsolevaluation convention)."""
    raw = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
    if raw is None:
        raise SegLabelError(f'the mask of image {img_id!r} is missing or unreadable: {path}')
    if raw.shape != tuple(size_hw):
        raise SegLabelError(f'the mask {path} of image {img_id!r} is {raw.shape} (h, w), '
                            f'the image {tuple(size_hw)} (image_sizes.txt)')
    return raw > 127


def true_mask_labels(infos: List[dict], num_classes: int, mask_root: str,
                     split: str) -> Iterator[Label]:
    """Labels from the split's true masks (class = the image label); SegLabelError
    naming the split when it has no masks (e.g. a train split: WSOL trains on labels)."""
    if not any('mask_paths' in info for info in infos):
        raise SegLabelError(f'split {split!r} has no true masks (no localization masks file '
                            'in its metadata): it can give pseudo-masks to train on, but '
                            'cannot be scored')
    for info in infos:
        img_id = info['img_id']
        if 'mask_paths' not in info:
            raise SegLabelError(f'image {img_id!r} of split {split!r} has no mask')
        size_hw = info['meta_size']
        fg = np.any([_read_mask(osp.join(mask_root, p), size_hw, img_id)
                     for p in info['mask_paths']], axis=0)
        ignore = (_read_mask(osp.join(mask_root, info['ignore_path']), size_hw, img_id)
                  if info.get('ignore_path') else None)
        yield img_id, mask_to_label(fg, info['gt_label'], num_classes, ignore, img_id), dict(
            cls=int(info['gt_label']))


def cam_store_maps(store_root: str, infos: List[dict]) -> Iterator[Tuple[str, np.ndarray]]:
    """Maps of a CAM store (square grids of the whole image), in the split's order."""
    store = CAMStore(store_root)
    for info in infos:
        yield info['img_id'], store.get_float(info['img_id'])


def scoremap_maps(scoremap_root: str, infos: List[dict]) -> Iterator[Tuple[str, np.ndarray]]:
    """wsolevaluation score maps ``<root>/<image id>.npy`` (any size: normalised)."""
    for info in infos:
        img_id = info['img_id']
        yield img_id, load_scoremap(scoremap_path(scoremap_root, img_id), img_id, resize=True)


def image_classes(infos: List[dict], class_source: str,
                  predictions: Optional[str] = None) -> Dict[str, int]:
    """image id -> the class of its foreground: the image label (``'gt'``) or the
    top-1 class of a predictions file (``'pred'``, the format of
    :func:`tedloc_mm.evaluation.scoremap_dir.read_predictions`)."""
    if class_source == 'gt':
        return {info['img_id']: int(info['gt_label']) for info in infos}
    if class_source != 'pred':
        raise ValueError(f"class_source must be 'gt' or 'pred', got {class_source!r}")
    if predictions is None:
        raise SegLabelError("class source 'pred' needs the predicted classes: a predictions "
                            'file (<image id>,<class>[,...] per line) or a localizer')
    top5, _ = read_predictions(predictions, [info['img_id'] for info in infos])
    return {img_id: int(classes[0]) for img_id, classes in top5.items()}
