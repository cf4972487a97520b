"""WSOLInferencer: MMEngine's ``BaseInferencer`` for TeD-Loc localizers.

    inferencer = WSOLInferencer('configs/tedloc_eva-l_cub.py', 'best.pth', device='cuda')
    results = inferencer(['bird.jpg', img_bgr], batch_size=8, show_dir='vis/')
    results[0]['topk'][0]   # {'label': 12, 'name': 'Cardinal', 'score': 0.93}
    results[0]['bbox']      # [x0, y0, x1, y1] float edges in the original image's pixels
    results[0]['pred_map']  # float32 (h, w) in [0, 1] at the original size
    results[0]['pred_scores']  # float32 (K,): every class's score (MMPretrain's key)

The four MMEngine steps (MMPretrain 1.x's ``ImageClassificationInferencer`` layout):

- ``preprocess``: each input (a path or a BGR uint8 array) is read by
  :func:`~tedloc_mm.apis.inference_steps.load_image`, passed through the config's test
  pipeline without its loading / annotation steps
  (:func:`~tedloc_mm.apis.inference_steps.inference_pipeline_cfg`) and collated in chunks of
  ``batch_size``. A chunk whose inputs differ in size (a keep-ratio resize) is split
  into runs of equal size, so that no input is padded by the data preprocessor and
  a batch gives the maps of batch size 1.
- ``forward``: ``model.test_step``, then each ``DataSample`` becomes a
  :class:`~tedloc_mm.apis.LocalizationResult` (top-k classes, map and box mapped
  back to the original pixels; the coordinate rules are in
  :mod:`tedloc_mm.apis.inference`). ``forward_kwargs``: ``topk``, ``cam_threshold``.
- ``visualize``: overlays drawn on the original image with
  :func:`~tedloc_mm.visualization.draw_localization` (the registered
  :class:`~tedloc_mm.visualization.WSOLVisualizer`): heat map, box, the top classes and
  the CAM threshold with its source (e.g. ``CAM threshold 0.35 (checkpoint (last
  validation))``).
  ``visualize_kwargs``: ``show``, ``wait_time``, ``show_dir``, ``vis_names``,
  ``draw_topk``, ``alpha``, ``return_vis``.
- ``postprocess``: one JSON-ready dict per image (plus its ``pred_map``), or the
  :class:`LocalizationResult` objects (``as_dict=False``), or the model's
  ``DataSample`` objects (``return_datasamples=True``).
"""
import os
import os.path as osp
from datetime import datetime
from typing import Callable, List, Optional, Sequence, Union

import mmcv
import numpy as np
import torch
from mmengine.config import Config, ConfigDict
from mmengine.dataset import pseudo_collate
from mmengine.infer import BaseInferencer
from mmengine.registry import DefaultScope
from mmengine.runner.checkpoint import CheckpointLoader
from mmengine.utils import scandir

from tedloc_mm.engine.checkpoint_weights import check_checkpoint_weights
from tedloc_mm.engine.lean_checkpoint import META_KEY as LEAN_META_KEY
from tedloc_mm.engine.lean_checkpoint import restore_frozen_weights
from tedloc_mm.registry import MODELS, VISUALIZERS
from tedloc_mm.visualization import draw_localization
from tedloc_mm.fileio.checkpoint import trusted_checkpoints
from tedloc_mm.model_index import resolve_config
from tedloc_mm.evaluation.cam_threshold import resolve_cam_threshold
from .inference_steps import (LocalizationResult, build_inference_pipeline, class_names_of,
                        load_image, result_from_sample)

#: what a folder given as input is searched for (recursively, sorted)
from tedloc_mm.fileio.image_io import IMAGE_SUFFIXES  # noqa: E402


class WSOLInferencer(BaseInferencer):
    """Classes, localization map and box of images, from a config and a checkpoint.

    Args:
        model: a config file (or a model name of ``model-index.yml``), a
            :class:`~mmengine.config.Config`, or a localizer built
            by this class / :func:`~tedloc_mm.apis.init_localizer` (it needs
            ``model.cfg``; ``weights`` must then be None).
        weights: a TeD-Loc checkpoint (Runner, plain state dict or lean). None keeps
            the weights of the config (random decoder; demos and tests only).
        device: where the model runs; None picks MMEngine's default device.
        cam_threshold: the CAM threshold of the boxes: a number, a metrics JSON of
            ``tools/test.py --out``, or None for the checkpoint's last validation,
            else 0.5 (:mod:`tedloc_mm.evaluation.cam_threshold`). A call can override it.
        cfg_options: overrides merged into the config.
        show_progress: show a progress bar over the batches.
        trust_checkpoint: read ``weights`` with full unpickling (``weights_only=False``).
            Only for a file you trust: unpickling can run code. By default the file is
            read with ``weights_only=True`` (plus the globals of MMEngine's Runner
            checkpoints) and anything else is refused
            (:mod:`tedloc_mm.fileio.checkpoint`).

    The checkpoint must hold every weight of the model (a lean checkpoint's frozen
    encoder is first restored from its own file): a weightless or foreign file raises
    :class:`~tedloc_mm.engine.CheckpointWeightsError` naming the missing groups; keys
    the model does not have are ignored with a warning that counts them
    (:mod:`tedloc_mm.engine.checkpoint_weights`).

    With a checkpoint, the EVA weights come from it (``model.backbone.checkpoint``
    is ignored; a lean checkpoint of :class:`~tedloc_mm.engine.LeanCheckpointHook`
    takes them from that file instead) and, if the head's anchor file is not on this
    machine, the anchors too (the class names then come from ``dataset_meta``).
    Class names: the checkpoint's ``meta.dataset_meta.classes``, else the anchor
    file's, else the class indices as strings.

    The model gets ``model.cfg``, ``model.dataset_meta`` (``{'classes': names}`` or
    ``{}``), ``model.cam_threshold`` and ``model.cam_threshold_source``.
    """

    preprocess_kwargs: set = set()
    forward_kwargs: set = {'topk', 'cam_threshold'}
    visualize_kwargs: set = {'show', 'wait_time', 'show_dir', 'vis_names', 'draw_topk',
                             'alpha', 'return_vis'}
    postprocess_kwargs: set = {'as_dict'}

    def __init__(self,
                 model: Union[str, Config, torch.nn.Module],
                 weights: Optional[str] = None,
                 device: Union[None, str, torch.device] = None,
                 cam_threshold: Union[None, float, str] = None,
                 cfg_options: Optional[dict] = None,
                 show_progress: bool = True,
                 trust_checkpoint: bool = False) -> None:
        self._cam_threshold_arg = cam_threshold
        self._cfg_options = cfg_options
        self._trust_checkpoint = trust_checkpoint
        if isinstance(model, torch.nn.Module):
            self._adopt_model(model, weights, device, show_progress)
            return
        if isinstance(model, str):
            model = resolve_config(model)   # a config file, or a model name of model-index.yml
        if not isinstance(model, (str, Config, ConfigDict)):
            raise TypeError('model must be a config file, a Config or a built localizer, '
                            f'got {type(model).__name__}')
        if weights is not None and not osp.isfile(weights):
            raise FileNotFoundError(f'checkpoint not found: {weights}')
        super().__init__(model=model, weights=weights, device=device, scope='tedloc',
                         show_progress=show_progress)

    def _adopt_model(self, model, weights, device, show_progress) -> None:
        """Wrap an already built localizer (what :func:`inference_localizer` does)."""
        if weights is not None:
            raise ValueError('weights must be None when model is a built localizer')
        cfg = getattr(model, 'cfg', None)
        if cfg is None:
            raise AttributeError('the model has no .cfg: build it with init_localizer or '
                                 'WSOLInferencer(config, weights)')
        if device is not None:
            model.to(device)
        if getattr(model, 'cam_threshold', None) is None:
            model.cam_threshold, model.cam_threshold_source = resolve_cam_threshold(
                self._cam_threshold_arg)
        self.scope = 'tedloc'
        self.model = model
        self.cfg = cfg
        self.pipeline = self._init_pipeline(cfg)
        self.collate_fn = self._init_collate(cfg)
        self.visualizer = self._init_visualizer(cfg)
        self.show_progress = show_progress

    # ------------------------------------------------------------------ building
    def _init_model(self, cfg: Config, weights: Optional[str],
                    device: Union[str, torch.device] = 'cpu') -> torch.nn.Module:
        """Build the localizer of ``cfg`` and load ``weights`` (see the class doc)."""
        if self._cfg_options:
            cfg.merge_from_dict(self._cfg_options)
        ckpt = None
        if weights is not None:
            with trusted_checkpoints([weights] if self._trust_checkpoint else []):
                ckpt = CheckpointLoader.load_checkpoint(weights, map_location='cpu')
            if not isinstance(ckpt, dict):
                raise TypeError(f'{weights} holds a {type(ckpt).__name__}, not a checkpoint')
            if 'state_dict' not in ckpt:            # a plain state dict
                ckpt = dict(state_dict=ckpt)
            self._prepare_cfg_for_checkpoint(cfg, ckpt, weights)
        with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'tedloc')):
            model = MODELS.build(cfg.model)
        if ckpt is None:
            model.init_weights()
        else:
            restore_frozen_weights(model, ckpt)
            check_checkpoint_weights(model, ckpt, weights)  # every weight, right shapes
            state = {k[len('module.'):] if k.startswith('module.') else k: v
                     for k, v in ckpt['state_dict'].items()}
            model.load_state_dict(state, strict=False)  # extra keys: warned about above
        names = class_names_of(cfg, ckpt)
        model.dataset_meta = {'classes': names} if names else {}
        model.cfg = cfg
        model.cam_threshold, model.cam_threshold_source = resolve_cam_threshold(
            self._cam_threshold_arg, ckpt)
        model.to(device)
        model.eval()
        return model

    @staticmethod
    def _prepare_cfg_for_checkpoint(cfg: Config, ckpt: dict, weights: str) -> None:
        """Take the backbone (full checkpoint) and, when the anchor file is absent,
        the anchors from the checkpoint instead of the files the config names."""
        lean = bool((ckpt.get('meta') or {}).get(LEAN_META_KEY))
        # the backbone weights are in a full checkpoint: don't require the EVA file
        # (a lean one restores them from that file in _init_model)
        if not lean and 'backbone' in cfg.model and 'checkpoint' in cfg.model.backbone:
            cfg.model.backbone.checkpoint = None
        head = cfg.model.get('head', {})
        anchor_file = head.get('anchor_file')
        if anchor_file and not osp.isfile(anchor_file):
            if 'head.anchors' not in ckpt['state_dict']:
                raise FileNotFoundError(f'anchor file {anchor_file} not found and the '
                                        f'checkpoint {weights} has no head.anchors')
            # placeholder embeddings; loading the state dict restores the exact buffer
            head.anchor_file = None
            head.anchor_embeddings = ckpt['state_dict']['head.anchors'].float().clone()

    def _init_pipeline(self, cfg: Config) -> Callable:
        # A model-only config (no test pipeline) still builds and loads: init_localizer
        # users may only want the model; running images through it then raises.
        try:
            return build_inference_pipeline(cfg)
        except KeyError as err:
            reason = err.args[0]

            def no_pipeline(_):
                raise KeyError(reason)
            return no_pipeline

    def _init_collate(self, cfg: Config) -> Callable:
        # the model's data preprocessor stacks the images; keep the samples a list
        return pseudo_collate

    def _init_visualizer(self, cfg: Config):
        """A :class:`WSOLVisualizer` of its own (no vis backends: files are written
        by :meth:`visualize`), named uniquely as MMEngine's instances must be."""
        name = f'wsol_inferencer_{id(self)}_{datetime.now().timestamp()}'
        with DefaultScope.overwrite_default_scope('tedloc'):
            return VISUALIZERS.build(dict(type='WSOLVisualizer', name=name))

    # ------------------------------------------------------------------ the steps
    def __call__(self,
                 inputs,
                 return_datasamples: bool = False,
                 batch_size: int = 1,
                 topk: int = 5,
                 cam_threshold: Union[None, float, str] = None,
                 **kwargs):
        """Run the four steps on ``inputs``: a path, a folder (its image files,
        recursively, sorted), a BGR uint8 array, or a list of paths and arrays.

        Args:
            return_datasamples: return the model's ``DataSample`` objects instead.
            batch_size: images per forward pass (results do not depend on it).
            topk: classes per image.
            cam_threshold: overrides the inferencer's threshold (number or metrics
                JSON file).
            **kwargs: ``show``, ``wait_time``, ``show_dir`` (write overlays
                ``<show_dir>/<name>.png``), ``vis_names`` (file names without
                extension, one per input; default the file stem or ``array_<i>``),
                ``draw_topk`` (classes written on the overlay, 3), ``alpha`` (heat map
                weight, 0.5), ``return_vis`` (keep the overlays: ``'vis'`` of each
                dict); ``as_dict`` (False: :class:`LocalizationResult` objects).

        Returns:
            a list with one item per input, in order (see the module doc).
        """
        if topk < 1:
            raise ValueError(f'topk must be >= 1, got {topk}')
        if batch_size < 1:
            raise ValueError(f'batch_size must be >= 1, got {batch_size}')
        if cam_threshold is None:
            thr = getattr(self.model, 'cam_threshold', None)
            source = getattr(self.model, 'cam_threshold_source', None)
            if thr is None:
                thr, source = resolve_cam_threshold(None)
        else:
            thr, source = resolve_cam_threshold(cam_threshold)
        self._threshold_source = source or 'given'   # written on the overlays
        return super().__call__(inputs, return_datasamples=return_datasamples,
                                batch_size=batch_size, topk=topk, cam_threshold=thr,
                                **kwargs)

    def _inputs_to_list(self, inputs) -> list:
        """One item per image: folders (also inside a list) become their image files."""
        if isinstance(inputs, (str, np.ndarray)):
            inputs = [inputs]
        out = []
        for item in inputs:
            if isinstance(item, str) and osp.isdir(item):
                files = sorted(scandir(item, suffix=IMAGE_SUFFIXES, recursive=True))
                if not files:
                    raise FileNotFoundError(f'no image files in folder {item}')
                out += [osp.join(item, f) for f in files]
            else:
                out.append(item)
        return out

    def preprocess(self, inputs: list, batch_size: int = 1, **kwargs):
        """Yield collated batches of at most ``batch_size`` inputs of equal size."""
        items = (self.pipeline(load_image(item, i)) for i, item in enumerate(inputs))
        for chunk in self._get_chunk_data(items, batch_size):
            # runs of equal input size, in order: the data preprocessor would pad a
            # mixed batch to its largest image and change the smaller images' maps
            start = 0
            for end in range(1, len(chunk) + 1):
                if end == len(chunk) or (chunk[end]['inputs'].shape
                                         != chunk[start]['inputs'].shape):
                    yield self.collate_fn(chunk[start:end])
                    start = end

    @torch.no_grad()
    def forward(self, inputs: dict, topk: int = 5,
                cam_threshold: float = 0.5) -> List[LocalizationResult]:
        names = (getattr(self.model, 'dataset_meta', None) or {}).get('classes')
        results = []
        for sample in self.model.test_step(inputs):
            res = result_from_sample(sample, topk, cam_threshold, names)
            res.data_sample = sample
            results.append(res)
        return results

    def visualize(self,
                  inputs: list,
                  preds: List[LocalizationResult],
                  show: bool = False,
                  wait_time: float = 0,
                  show_dir: Optional[str] = None,
                  vis_names: Optional[Sequence[str]] = None,
                  draw_topk: int = 3,
                  alpha: float = 0.5,
                  return_vis: bool = False) -> Optional[List[np.ndarray]]:
        """Overlays on the original images (RGB uint8), or None when nothing asks
        for them (no ``show``, ``show_dir`` or ``return_vis``)."""
        if not (show or show_dir is not None or return_vis):
            return None
        if vis_names is not None and len(vis_names) != len(inputs):
            raise ValueError(f'{len(vis_names)} vis_names for {len(inputs)} inputs')
        names = list(vis_names) if vis_names is not None else _default_names(inputs)
        drawn = []
        for i, (item, res) in enumerate(zip(inputs, preds)):
            rgb = mmcv.bgr2rgb(load_image(item, i)['img'])
            out_file = None if show_dir is None else osp.join(show_dir, names[i] + '.png')
            if out_file is not None:
                os.makedirs(osp.dirname(out_file), exist_ok=True)
            texts = [f'{t["name"]}: {t["score"]:.3f}' for t in res.topk[:draw_topk]]
            texts.append(f'CAM threshold {res.cam_threshold:.2f} '
                         f'({getattr(self, "_threshold_source", "given")})')
            vis = draw_localization(self.visualizer, rgb, res.pred_map,
                                    pred_boxes=None if res.bbox is None else [res.bbox],
                                    texts=texts, alpha=alpha)
            if show:
                self.visualizer.show(vis, win_name=names[i], wait_time=wait_time)
            if out_file is not None:
                mmcv.imwrite(mmcv.rgb2bgr(vis), out_file)
            drawn.append(vis if return_vis else None)
        return drawn

    def postprocess(self,
                    preds: List[LocalizationResult],
                    visualization: Optional[List[np.ndarray]],
                    return_datasamples: bool = False,
                    as_dict: bool = True):
        if return_datasamples:
            return [res.data_sample for res in preds]
        if not as_dict:
            return preds
        out = []
        for i, res in enumerate(preds):
            item = res.to_dict()
            top = res.topk[0]
            # MMPretrain's ImageClassificationInferencer keys, plus ours
            item.update(pred_class=top['name'], pred_score=top['score'],
                        pred_scores=res.pred_scores, pred_map=res.pred_map)
            if visualization is not None and visualization[i] is not None:
                item['vis'] = visualization[i]
            out.append(item)
        return out


def _default_names(inputs: list) -> List[str]:
    """Overlay file names: the file stem (``_1``, ``_2`` on repeats) or ``array_<i>``."""
    seen, names = {}, []
    for i, item in enumerate(inputs):
        stem = (osp.splitext(osp.basename(item))[0] if isinstance(item, str)
                else f'array_{i}')
        n = seen.get(stem, 0)
        seen[stem] = n + 1
        names.append(stem if n == 0 else f'{stem}_{n}')
    return names
