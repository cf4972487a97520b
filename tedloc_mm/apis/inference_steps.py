"""Run a trained TeD-Loc localizer on images: classes, map and box per image.

    model = init_localizer('configs/tedloc_eva-l_cub.py', 'work_dirs/.../best.pth')
    result = inference_localizer(model, 'bird.jpg')      # one image: one result
    result.topk[0]       # {'label': 12, 'name': 'Cardinal', 'score': 0.93}
    result.bbox          # [x0, y0, x1, y1] in the original image's pixels
    result.pred_scores   # float32 (K,): every class's score
    results = inference_localizer(model, ['bird.jpg', img_bgr_array])   # a list: a list

What the steps of :class:`~tedloc_mm.apis.WSOLInferencer` (MMEngine's
``BaseInferencer``) are made of: the inference pipeline, the image reader, the result
type and the mapping of boxes back to the original image. The function API
(:mod:`tedloc_mm.apis.inference`) is a thin user of the inferencer.

How coordinates are handled
    The test pipeline of the config (``cfg.test_dataloader.dataset.pipeline``) resizes
    every image to the input size (224 x 224 for the EVA-L configs) whatever its aspect.
    The box is computed **at the input size and then scaled** to the original image,
    not recomputed on a map resized to the original size: WSOLMetric evaluates (and
    picks the CAM threshold) on the map at the input size, so the box at that
    threshold is exactly the box the protocol scored; recomputing it on a bicubically
    upsampled map would change the min-max normalisation (bicubic overshoot) and the
    contours, i.e. give a box the validation never measured. Scaling costs at most one
    input pixel of resolution (``ori_w / in_w`` original pixels), far below the IoU
    tolerance. The map returned for display is the input-size map resized to the
    original (h, w) with the protocol's bicubic resize and min-max normalisation.

    Box convention of the result: ``bbox`` = x0, y0, x1, y1 as float pixel *edges* of
    the original image (x1, y1 exclusive, 0 <= x0 < x1 <= w): the protocol's inclusive
    integer box (x0..x1 pixels) at the input size covers the edges [x0, x1 + 1), which
    are scaled by ``ori / input``. ``bbox_input`` keeps the protocol's inclusive box.
    (The protocol's box is OpenCV's ``boundingRect`` as (x, y, x + w, y + h), read as
    inclusive pixels, so it reaches one pixel past the thresholded region on the right
    and bottom unless clipped at the border; we keep that box as scored rather than
    correct it.)
    A map with no pixel above the threshold (e.g. a constant map) has no box: None.

Only resize-type test pipelines can be mapped back; a pipeline whose crop makes
``img_shape`` differ from ``ori_shape * scale_factor`` is refused with a clear error.
"""
import copy
import os.path as osp
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmengine.config import Config
from mmengine.dataset import Compose
from mmengine.registry import DefaultScope

from tedloc_mm.fileio.image_io import read_image
from tedloc_mm.evaluation import boxes_at_threshold, prepare_map
from tedloc_mm.registry import TRANSFORMS
from tedloc_mm.fileio.anchor_file import load_anchor_file

ImageInput = Union[str, np.ndarray]

#: test-pipeline steps that read files or annotations an arbitrary image does not have
_DROPPED_TRANSFORMS = ('LoadImageFromFile', 'LoadWSOLImage', 'LoadWSOLAnnotations',
                       'LoadCAM', 'PseudoLabelSampler', 'LoadAnnotations')
#: PackWSOLInputs needs a label and an id; at inference MMPretrain's PackInputs packs
#: the image and these metainfo keys (those present) instead
_PACK_TRANSFORMS = ('PackWSOLInputs', 'PackInputs')
_INFER_META_KEYS = ('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')


def _bare_type(t) -> str:
    return str(t).split('.')[-1] if isinstance(t, str) else getattr(t, '__name__', str(t))


def inference_pipeline_cfg(cfg: Config) -> List[dict]:
    """The config's test pipeline without its loading/annotation steps, packed with
    MMPretrain's ``PackInputs`` (image + metainfo only)."""
    try:
        steps = cfg.test_dataloader.dataset.pipeline
    except AttributeError:
        raise KeyError('the config has no test_dataloader.dataset.pipeline to build the '
                       'inference pipeline from') from None
    out = []
    for step in steps:
        name = _bare_type(step['type'])
        if name in _DROPPED_TRANSFORMS:
            continue
        if name in _PACK_TRANSFORMS:
            out.append(dict(type='PackInputs', meta_keys=_INFER_META_KEYS))
            continue
        out.append(copy.deepcopy(dict(step)))
    if not any(_bare_type(s['type']) == 'PackInputs' for s in out):
        out.append(dict(type='PackInputs', meta_keys=_INFER_META_KEYS))
    return out


def build_inference_pipeline(cfg: Config) -> Compose:
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'tedloc')):
        return Compose([TRANSFORMS.build(s) for s in inference_pipeline_cfg(cfg)])


def load_image(item: ImageInput, index: int = 0) -> dict:
    """A file path (read in BGR, like ``LoadImageFromFile``) or an (H, W, 3) uint8
    **BGR** array (as OpenCV / MMCV give; gray (H, W) arrays are expanded) ->
    the pipeline's input dict."""
    if isinstance(item, str):
        img = read_image(item)  # FileNotFoundError / ImageReadError naming the file
        img_id, img_path = item, item
    elif isinstance(item, np.ndarray):
        img = item
        if img.ndim == 2:
            img = np.repeat(img[..., None], 3, axis=2)
        if img.ndim != 3 or img.shape[2] != 3 or min(img.shape[:2]) < 1:
            raise ValueError(f'image #{index}: expected an (H, W, 3) BGR array, got shape '
                             f'{item.shape}')
        if img.dtype != np.uint8:
            raise ValueError(f'image #{index}: expected uint8 values, got {img.dtype}')
        img_id, img_path = f'array_{index}', None
    else:
        raise TypeError(f'image #{index}: expected a file path or an ndarray, got '
                        f'{type(item).__name__}')
    return dict(img=img, img_id=img_id, img_path=img_path, img_shape=img.shape[:2],
                ori_shape=img.shape[:2])


def class_names_of(cfg: Config, checkpoint: Optional[dict]) -> Optional[List[str]]:
    """Class names: the checkpoint's dataset meta, else the head's anchor file."""
    meta = (checkpoint or {}).get('meta') or {}
    classes = (meta.get('dataset_meta') or {}).get('classes')
    if classes:
        return list(classes)
    anchor_file = cfg.model.get('head', {}).get('anchor_file')
    if anchor_file and osp.isfile(anchor_file):
        return list(load_anchor_file(anchor_file)['class_names'])
    return None


@dataclass
class LocalizationResult:
    """What :func:`inference_localizer` returns for one image.

    ``topk``: list of dicts ``label`` (int), ``name`` (str), ``score`` (softmax
    probability), best first. ``pred_map``: float32 (h, w) in [0, 1] at the original
    size (see the module doc). ``bbox``: [x0, y0, x1, y1] float edges in original
    pixels, or None; ``bbox_input``: the protocol's inclusive int box at the input
    size, or None. ``cam_threshold``: the threshold used.
    """
    img_id: str
    img_path: Optional[str]
    ori_shape: Tuple[int, int]
    input_shape: Tuple[int, int]
    topk: List[Dict]
    cam_threshold: float
    bbox: Optional[List[float]]
    bbox_input: Optional[List[int]]
    pred_map: np.ndarray = field(repr=False)
    #: the model's prediction it was made from (input-size map), when kept
    data_sample: Optional[object] = field(default=None, repr=False, compare=False)
    #: the full class-score vector, float32 (K,) (MMPretrain's ``pred_scores``)
    pred_scores: Optional[np.ndarray] = field(default=None, repr=False, compare=False)

    @property
    def pred_label(self) -> int:
        return self.topk[0]['label']

    def to_dict(self) -> dict:
        """JSON-ready dict (without the map)."""
        return dict(img_id=self.img_id, img_path=self.img_path,
                    ori_shape=list(self.ori_shape), input_shape=list(self.input_shape),
                    pred_label=self.pred_label, topk=self.topk,
                    cam_threshold=self.cam_threshold, bbox=self.bbox,
                    bbox_input=self.bbox_input)


def box_to_original(box_input: Sequence[int], input_hw: Sequence[int],
                    ori_hw: Sequence[int]) -> List[float]:
    """Inclusive int box at the input size -> float edges in the original image.

    Pixels x0..x1 of an ``in_w``-wide input cover the edges [x0, x1 + 1); scaled by
    ``ori_w / in_w`` (and likewise in y), clipped to [0, ori_w] x [0, ori_h].
    """
    (in_h, in_w), (h, w) = input_hw, ori_hw
    x0, y0, x1, y1 = (float(v) for v in box_input)
    sx, sy = w / in_w, h / in_h
    out = [x0 * sx, y0 * sy, (x1 + 1) * sx, (y1 + 1) * sy]
    return [min(max(out[0], 0.0), w), min(max(out[1], 0.0), h),
            min(max(out[2], 0.0), w), min(max(out[3], 0.0), h)]


def _check_resize_only(meta: dict) -> None:
    """Refuse pipelines whose input is not a plain resize of the whole image."""
    (h, w), (ih, iw) = meta['ori_shape'][:2], meta['img_shape'][:2]
    sf = meta.get('scale_factor')
    if sf is None:
        if (h, w) != (ih, iw):
            raise NotImplementedError(f'{meta.get("img_id")}: the test pipeline changed '
                                      'the size without recording scale_factor')
        return
    sx, sy = float(sf[0]), float(sf[1])
    if abs(w * sx - iw) > 1.0 or abs(h * sy - ih) > 1.0:
        raise NotImplementedError(
            f'{meta.get("img_id")}: the test pipeline does more than resize the whole '
            f'image (ori {h}x{w} * scale {sx:.4f},{sy:.4f} != input {ih}x{iw}, e.g. a '
            'crop); inference_localizer maps boxes back only for resize pipelines')


def _class_name(names: Optional[List[str]], label: int) -> str:
    return names[label] if names and 0 <= label < len(names) else str(label)


def result_from_sample(sample, topk: int, cam_threshold: float,
                       class_names: Optional[List[str]] = None) -> LocalizationResult:
    """Turn one predicted ``DataSample`` (fields of ``tedloc_mm/structures.py``) into
    a :class:`LocalizationResult`."""
    meta = sample.metainfo
    img_id = meta.get('img_id', '?')
    _check_resize_only(meta)
    ori_hw = tuple(int(v) for v in meta['ori_shape'][:2])
    raw = sample.pred_map.detach().float().cpu().numpy()
    input_hw = tuple(raw.shape)
    map_in, finite = prepare_map(raw)  # the protocol's map at the input size
    if not finite:
        raise ValueError(f'image {img_id}: the predicted map contains NaN or inf')
    box = boxes_at_threshold(map_in, cam_threshold)[0]
    if map_in.max() <= 0:  # constant map: no pixel above any threshold, no contour
        bbox_input = bbox = None
    else:
        bbox_input = [int(v) for v in box]
        bbox = box_to_original(bbox_input, input_hw, ori_hw)
    map_ori, _ = prepare_map(raw, ori_hw)
    scores = sample.pred_score.detach().float().cpu()
    top = torch.topk(scores, min(topk, scores.numel()))
    top = [dict(label=int(i), name=_class_name(class_names, int(i)), score=float(s))
           for s, i in zip(top.values, top.indices)]
    return LocalizationResult(img_id=str(img_id), img_path=meta.get('img_path'),
                              ori_shape=ori_hw, input_shape=input_hw, topk=top,
                              cam_threshold=float(cam_threshold), bbox=bbox,
                              bbox_input=bbox_input, pred_map=map_ori.astype(np.float32),
                              pred_scores=scores.numpy().astype(np.float32))
