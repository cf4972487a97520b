"""WSOLVisualizationHook: overlays of the first N validation / test images."""
import os.path as osp
from typing import Optional, Sequence, Union

import mmcv
import numpy as np
from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.runner import EpochBasedTrainLoop
from mmengine.visualization import Visualizer

from tedloc_mm.evaluation.cam_threshold import (DEFAULT_CAM_THRESHOLD, check_cam_threshold,
                                          threshold_from_metrics)
from tedloc_mm.registry import HOOKS
from .wsol_overlay import draw_localization, format_topk, predicted_box_edges


@HOOKS.register_module()
class WSOLVisualizationHook(Hook):
    """Draw the map (heat map), GT boxes (green), the predicted box (red) and the top
    classes of the first ``num_images`` images of each validation and test run.

    It is our configs' ``default_hooks.visualization`` (off there: ``enable=False``, as
    MMPretrain's ``VisualizationHook``), so MMPretrain's ``tools/test.py --show-dir DIR
    [--show] [--wait-time S] [--interval N]`` switches it on and sets ``out_dir``,
    ``show``, ``wait_time`` and ``interval`` like ours does.

    The pictures go to the Runner's visualizer (``visualizer`` of the config): with
    MMPretrain's default runtime that is a ``LocalVisBackend`` writing
    ``<work_dir>/<timestamp>/vis_data/vis_image/<name>_<step>.png``; add
    ``dict(type='TensorboardVisBackend')`` to ``vis_backends`` (and install
    ``tensorboard``) to see them in TensorBoard's Images tab, under the same names
    (tested: the event file holds the same pictures as the PNG files). Names are
    ``val_<image file stem>`` / ``test_<image file stem>`` (files
    ``test_<stem>_<step>.png``); the step is the epoch (epoch-based training) or the
    iteration (0 in a test run). In a distributed run the main process draws the
    images of its own share of the data (MMEngine's visualizer draws only there).

    The box is the WSOL protocol's (the routine WSOLMetric uses: min-max
    normalisation, 8-bit quantisation, largest contour) at ``cam_threshold``:
    ``'best'`` (default) uses the CAM threshold that this very evaluation chose
    (``wsol/best_thr`` of the metrics; images are kept until the evaluation ends
    and drawn then), falling back to 0.5 when the metrics have none; a number fixes
    it. Input images are taken from the data batch (uint8, BGR as
    ``LoadImageFromFile`` reads them), at the input resolution; GT boxes are the
    samples' ``gt_bboxes`` (input pixels).

    Args:
        num_images: how many images (the first ones of the dataloader, every
            ``interval``-th) per run.
        cam_threshold: ``'best'`` or a number in [0, 1).
        topk: number of classes written on the picture.
        alpha: heat map weight.
        enable_val, enable_test: draw during validation / test.
        out_dir: also write the PNGs to this folder (besides the visualizer).
        enable: master switch (MMPretrain's ``--show-dir`` / ``--show`` set it).
        interval: keep every ``interval``-th image of the run (1 = each).
        show: also show each picture in a window (``visualizer.show``).
        wait_time: seconds a shown picture stays (0: until a key is pressed).
    """

    def __init__(self,
                 num_images: int = 8,
                 cam_threshold: Union[str, float] = 'best',
                 topk: int = 3,
                 alpha: float = 0.5,
                 enable_val: bool = True,
                 enable_test: bool = True,
                 out_dir: Optional[str] = None,
                 enable: bool = True,
                 interval: int = 1,
                 show: bool = False,
                 wait_time: float = 0.):
        if num_images < 0:
            raise ValueError(f'num_images must be >= 0, got {num_images}')
        if not isinstance(interval, int) or interval < 1:
            raise ValueError(f'interval must be a positive int, got {interval!r}')
        if cam_threshold != 'best':
            cam_threshold = check_cam_threshold(cam_threshold, 'WSOLVisualizationHook')
        self.num_images = num_images
        self.cam_threshold = cam_threshold
        self.topk = topk
        self.alpha = alpha
        self.enable = dict(val=enable_val, test=enable_test)
        self.out_dir = out_dir
        self.enable_all = enable
        self.interval = interval
        self.show = show
        self.wait_time = wait_time
        self._kept = []
        self._seen = 0

    # ------------------------------------------------------------------ collect
    def _keep(self, mode: str, data_batch: dict, outputs: Sequence) -> None:
        if not (self.enable_all and self.enable[mode]) or not is_main_process() \
                or len(self._kept) >= self.num_images:
            return
        images = data_batch['inputs']
        for img, sample in zip(images, outputs):
            if len(self._kept) >= self.num_images:
                break
            self._seen += 1
            if (self._seen - 1) % self.interval:
                continue
            bgr = np.ascontiguousarray(img.permute(1, 2, 0).cpu().numpy().astype(np.uint8))
            gt = sample.get('gt_bboxes')
            self._kept.append(dict(
                image=mmcv.bgr2rgb(bgr),
                pred_map=sample.pred_map.detach().float().cpu().numpy(),
                pred_score=sample.get('pred_score'),
                gt_bboxes=None if gt is None else gt.detach().cpu().numpy(),
                name=osp.basename(str(sample.metainfo.get('img_path') or
                                      sample.metainfo.get('img_id', len(self._kept))))))

    def before_val_epoch(self, runner) -> None:
        self._kept, self._seen = [], 0

    def before_test_epoch(self, runner) -> None:
        self._kept, self._seen = [], 0

    def after_val_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        self._keep('val', data_batch, outputs)

    def after_test_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        self._keep('test', data_batch, outputs)

    # ------------------------------------------------------------------ draw
    def _threshold(self, metrics: Optional[dict]) -> float:
        if self.cam_threshold != 'best':
            return self.cam_threshold
        try:
            return threshold_from_metrics(metrics or {}, 'validation metrics')
        except KeyError:
            return DEFAULT_CAM_THRESHOLD

    def _draw_kept(self, runner, mode: str, metrics: Optional[dict], step: int) -> None:
        if not self._kept:
            return
        visualizer = Visualizer.get_current_instance()
        thr = self._threshold(metrics)
        names = (getattr(runner.model, 'dataset_meta', None) or {}).get('classes')
        if not names:
            loader = getattr(runner, f'{mode}_dataloader', None)
            names = getattr(getattr(loader, 'dataset', None), 'metainfo', {}).get('classes')
        for item in self._kept:
            texts = [f'thr {thr:.2f}']
            if item['pred_score'] is not None:
                texts = format_topk(names, item['pred_score'], self.topk) + texts
            drawn = draw_localization(
                visualizer, item['image'], item['pred_map'],
                pred_boxes=predicted_box_edges(item['pred_map'], thr),
                gt_boxes=item['gt_bboxes'], texts=texts, alpha=self.alpha)
            # the backends add '_<step>.png': the name is the file's stem
            name = f'{mode}_{osp.splitext(item["name"])[0]}'
            visualizer.add_image(name, drawn, step=step)
            if self.out_dir is not None:
                mmcv.imwrite(mmcv.rgb2bgr(drawn), osp.join(self.out_dir, f'{name}_{step}.png'))
            if self.show:
                visualizer.show(drawn, win_name=name, wait_time=self.wait_time)
        self._kept = []

    def after_val_epoch(self, runner, metrics: Optional[dict] = None) -> None:
        try:
            by_epoch = isinstance(runner.train_loop, EpochBasedTrainLoop)
        except RuntimeError:  # a validation-only Runner has no train loop
            by_epoch = False
        step = runner.epoch if by_epoch else runner.iter
        self._draw_kept(runner, 'val', metrics, step)

    def after_test_epoch(self, runner, metrics: Optional[dict] = None) -> None:
        self._draw_kept(runner, 'test', metrics, 0)
