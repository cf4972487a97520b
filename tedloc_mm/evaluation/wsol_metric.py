"""WSOLMetric: the WSOL protocol of Choe et al. (CVPR 2020) as an MMEngine metric."""
import os.path as osp
from typing import Optional, Sequence, Tuple, Union

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger, print_log

from tedloc_mm.registry import METRICS
from . import component_tree
from .box_protocol import cam_thresholds, prepare_map, rescale_boxes
from .parallel import map_in_threads
from .per_image_results import per_image_lines, write_per_image_results
from .scoremap_writer import PREDICTIONS_FILE, save_scoremap, write_meta, write_predictions
from .wsol_analysis import write_analysis
from .wsol_records import PREFIX, evaluate_image, summarize_records, threshold_index


def _as_numpy(x):
    if hasattr(x, 'detach'):
        return x.detach().cpu().numpy()
    return np.asarray(x)


@METRICS.register_module()
class WSOLMetric(BaseMetric):
    """MaxBoxAcc, MaxBoxAccV2, Top-1/Top-5 Loc, classification accuracy and PxAP.

    The protocol (``clovaai/wsolevaluation``): each ``pred_map`` is resized to the
    evaluation size (bicubic) and min-max normalised (constant or NaN map -> zeros);
    for each CAM threshold ``t`` in ``np.arange(0, 1, cam_curve_interval)`` the
    8-bit map ``uint8(map * 255)`` is binarised strictly above
    ``int(t * max(map8))``; ``cv2.findContours(RETR_TREE)`` gives the contours
    (holes included); each contour's box is its ``boundingRect`` (x, y, x+w, y+h)
    with x1, y1 clipped to W-1, H-1, and no contour gives (0, 0, 0, 0). An image is
    correct at ``t`` when the best IoU (``+1`` pixel convention) over all
    (predicted, GT) box pairs reaches the IoU threshold. GT boxes are rescaled
    to the evaluation size with ``int`` truncation, from ``ori_shape``
    (``ori_gt_bboxes``: right when the test pipeline resizes the whole image, as
    the protocol does) or from ``img_shape`` (``gt_bboxes``, moved by every
    transform: right with crops), see ``box_source``. Counts are summed over
    images, accuracies maximised over thresholds.

    Reported metrics (percent, except ``best_thr``), with ``prefix='wsol'``:

    - ``wsol/MaxBoxAcc``: the box of the largest-``contourArea`` contour, IoU
      ``loc_iou`` (0.5), maximum over CAM thresholds.
    - ``wsol/MaxBoxAccV2``: boxes of all contours, mean over ``iou_thrs`` of the
      maxima over CAM thresholds; ``wsol/MaxBoxAccV2@0.3``, ``@0.5``, ``@0.7``:
      each IoU's maximum.
    - ``wsol/best_thr``: the CAM threshold of MaxBoxAcc (first one on ties).
    - ``wsol/Top1Loc``, ``wsol/Top5Loc``: MaxBoxAcc's box correct *and* the GT
      class the top-1 / among the top-5 predicted classes, maximum over CAM
      thresholds (the common convention); ``wsol/Top1Loc@best_thr``,
      ``wsol/Top5Loc@best_thr``: the same at ``wsol/best_thr``.
    - ``wsol/Top1Cls``, ``wsol/Top5Cls``: classification accuracy of ``pred_score``.
    - ``wsol/PxAP``: pixel average precision, only when samples carry ``gt_mask``.
    - with ``fixed_thrs=(0.25,)``: ``wsol/BoxAcc@thr0.25``, ``wsol/Top1Loc@thr0.25``,
      ``wsol/Top5Loc@thr0.25``: the same box at that one CAM threshold (the
      fixed-threshold convention of e.g. TS-CAM / GenPromp; their other
      differences: docs/en/evaluation_protocol.md).

    Box metrics are over images with GT boxes, Top-k Loc needs ``pred_score`` and
    ``gt_label`` on all of them, classification counts every image with both.

    Bad input:
        - a map that is not 2-D, boxes that break x0 <= x1 / y0 <= y1 / >= 0, or a
          non-finite ``pred_score``: ValueError naming the image id;
        - a NaN or inf map: evaluated as an all-zero map (the protocol's rule for
          NaN) and counted in a warning with the first image ids; with
          ``nonfinite='error'`` a ValueError instead;
        - an image without GT boxes (field missing or N = 0) and without
          ``gt_mask``: with ``no_box='error'`` (default) a ValueError naming it;
          with ``no_box='skip'`` it is left out of the box metrics (counted and
          logged), its classification still counts.

    Per image only a compact record is kept (packed hit bits per CAM threshold
    and IoU, top-5 classes, label, PxAP histograms; see
    :mod:`.wsol_records`), never a map, so results gather cheaply across
    processes; :meth:`compute_metrics` only sums.

    Args:
        eval_size: (h, w) or int of the evaluation, None = each pred_map's shape.
        cam_curve_interval: CAM threshold step (0.01; wsolevaluation's scripts
            also use 0.001).
        iou_thrs: IoU thresholds of MaxBoxAccV2.
        loc_iou: the IoU of MaxBoxAcc and Top-k Loc; must be in ``iou_thrs``.
        fixed_thrs: CAM thresholds (members of the threshold list) at which the
            MaxBoxAcc box is also reported, see above.
        box_source: ``'auto'`` (``ori_gt_bboxes`` if present, else ``gt_bboxes``),
            ``'ori'`` or ``'input'`` (only that field).
        no_box: ``'error'`` or ``'skip'``, see above.
        nonfinite: ``'zero'`` or ``'error'``, see above.
        workers: threads of this process that evaluate the samples of a batch
            (1 = none; the numbers do not depend on it). Under ``dist_test.sh``
            each process has its own threads.
        analysis_dir: also write, at the end of each evaluation, into this folder
            (``tools/test.py --analysis-dir``): ``curves.json``, ``per_class.csv``,
            ``per_class.md``, ``failures.json``
            (:mod:`tedloc_mm.evaluation.wsol_analysis`) and ``per_image.jsonl``
            (:mod:`tedloc_mm.evaluation.per_image_results`). Each record then also
            keeps the image id, the top-5 scores, the GT boxes and the largest
            contour's box at every CAM threshold (about 1 KB; the boxes cost about
            3x the evaluation time, see ``evaluate_image``'s ``box_thresholds``).
        scoremap_dir: also write the maps this metric scores into this folder
            (``tools/test.py --save-scoremaps``), as
            :mod:`tedloc_mm.evaluation.scoremap_writer` lays them out: one float32
            ``<img_id>.npy`` per image (the map resized to the evaluation size and
            min-max normalised), ``predictions.txt`` (the full score vectors) and
            ``scoremaps.json`` (evaluation size, CAM threshold step, IoU list, the
            metrics). ``eval_scoremaps.py`` on the folder with that size and step
            gives these metrics to the last digit. For that, the metric then scores
            the float32 map it writes (its float64 values rounded to float32: a
            pixel within about 6e-8 of a quantisation level can move, so the numbers
            can differ in the last digits from a run without ``scoremap_dir``); the
            image ids must be relative paths. PxAP matches when the masks reach the
            metric at their file's size (eval_scoremaps.py reads the mask files).
        per_image_thr: the CAM threshold of ``per_image.jsonl``'s boxes: ``'best'``
            (this evaluation's ``best_thr``) or a number (e.g. the validation's
            ``best_thr``; only that one box is then kept per image).
        collect_device, prefix: as in :class:`mmengine.evaluator.BaseMetric`.
    """

    default_prefix = PREFIX

    def __init__(self,
                 eval_size: Union[None, int, Tuple[int, int]] = None,
                 cam_curve_interval: float = 0.01,
                 iou_thrs: Sequence[float] = (0.3, 0.5, 0.7),
                 loc_iou: float = 0.5,
                 fixed_thrs: Sequence[float] = (),
                 box_source: str = 'auto',
                 no_box: str = 'error',
                 nonfinite: str = 'zero',
                 workers: int = 1,
                 analysis_dir: Optional[str] = None,
                 per_image_thr: Union[str, float] = 'best',
                 scoremap_dir: Optional[str] = None,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None,
                 **kwargs):
        super().__init__(collect_device=collect_device, prefix=prefix, **kwargs)
        if isinstance(eval_size, int):
            eval_size = (eval_size, eval_size)
        self.eval_size = None if eval_size is None else tuple(int(s) for s in eval_size)
        self.thresholds = cam_thresholds(cam_curve_interval)
        self.cam_curve_interval = float(cam_curve_interval)
        self.scoremap_dir = scoremap_dir
        self.iou_thrs = tuple(float(t) for t in iou_thrs)
        self.loc_iou = float(loc_iou)
        if self.loc_iou not in self.iou_thrs:
            raise ValueError(f'loc_iou={loc_iou} must be one of iou_thrs={self.iou_thrs}')
        if no_box not in ('error', 'skip'):
            raise ValueError(f"no_box must be 'error' or 'skip', got {no_box!r}")
        if nonfinite not in ('zero', 'error'):
            raise ValueError(f"nonfinite must be 'zero' or 'error', got {nonfinite!r}")
        if box_source not in ('auto', 'ori', 'input'):
            raise ValueError(f"box_source must be 'auto', 'ori' or 'input', got {box_source!r}")
        self.box_source = box_source
        self.fixed_thrs = tuple(float(t) for t in fixed_thrs)
        for thr in self.fixed_thrs:
            threshold_index(self.thresholds, thr)     # fail at build time, not at the end
        self.no_box = no_box
        self.nonfinite = nonfinite
        if int(workers) < 1:
            raise ValueError(f'workers must be >= 1, got {workers}')
        self.workers = int(workers)
        self.analysis_dir = analysis_dir
        if per_image_thr != 'best':
            per_image_thr = float(per_image_thr)
            threshold_index(self.thresholds, per_image_thr)
        self.per_image_thr = per_image_thr
        # numba compiles the box evaluator on its first use in a fresh checkout: do it
        # here, where a pause can be explained, not in the middle of the test loop
        seconds = component_tree.warm_up()
        if seconds > 2:
            print_log(f'WSOLMetric: compiled the box evaluator in {seconds:.0f} s '
                      '(numba, once; cached for the next runs)', logger='current')

    def _gt_boxes(self, sample: dict, size: Tuple[int, int]) -> Optional[np.ndarray]:
        """GT boxes in evaluation pixels, or None when the sample has none."""
        boxes, from_hw = None, None
        if self.box_source in ('auto', 'ori'):
            boxes, from_hw = sample.get('ori_gt_bboxes'), sample.get('ori_shape')
        if boxes is None and self.box_source in ('auto', 'input'):
            boxes, from_hw = sample.get('gt_bboxes'), sample.get('img_shape')
        if boxes is None:
            return None
        boxes = _as_numpy(boxes).astype(np.float64).reshape(-1, 4)
        if len(boxes) == 0:
            return None
        if from_hw is None:
            raise ValueError('boxes are given but the shape they refer to '
                             '(ori_shape / img_shape) is missing')
        return rescale_boxes(boxes, tuple(from_hw)[:2], size)

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        """Turn each sample into a compact record (see :mod:`.wsol_records`)."""
        self.results.extend(map_in_threads(lambda i: self._record(data_samples[i]),
                                           len(data_samples), self.workers))

    def _record(self, sample: dict) -> dict:
        """The compact record of one sample (ValueError naming its image id)."""
        img_id = sample.get('img_id', sample.get('img_path', '<unknown id>'))
        try:
            if 'pred_map' not in sample:
                raise ValueError('the sample has no pred_map')
            pred_map = _as_numpy(sample['pred_map'])
            if pred_map.ndim != 2:
                raise ValueError(f'pred_map must be 2-D (H, W), got shape {pred_map.shape}')
            size = self.eval_size or tuple(pred_map.shape)
            gt_boxes = self._gt_boxes(sample, size)
            gt_mask = sample.get('gt_mask')
            if gt_boxes is None and gt_mask is None and self.no_box == 'error':
                raise ValueError("no GT box (set WSOLMetric(no_box='skip') to leave "
                                 'such images out of the box metrics)')
            if self.scoremap_dir is not None:
                pred_map = self._save_scored_map(pred_map, size, img_id)
            box_thrs = None
            if self.analysis_dir is not None:
                box_thrs = (self.thresholds if self.per_image_thr == 'best'
                            else [self.per_image_thr])
            record = evaluate_image(
                pred_map, gt_boxes, thresholds=self.thresholds,
                iou_thrs=self.iou_thrs, eval_size=size,
                pred_score=sample.get('pred_score'), gt_label=sample.get('gt_label'),
                gt_mask=gt_mask, ignore_mask=sample.get('ignore_mask'),
                nonfinite=self.nonfinite, box_thresholds=box_thrs,
                keep_scores=box_thrs is not None)
        except ValueError as err:
            raise ValueError(f'WSOLMetric: image {img_id}: {err}') from err
        if gt_boxes is None and gt_mask is None:
            record['no_box'] = True
        if self.scoremap_dir is not None:
            record['img_id'] = str(img_id)
            record['size'] = tuple(int(s) for s in size)
            if sample.get('pred_score') is not None:
                record['scores'] = _as_numpy(sample['pred_score']).astype(np.float32).ravel()
        if record.get('nonfinite') or self.analysis_dir is not None:
            record['img_id'] = str(img_id)   # for the warning (rare) or the analysis
        if self.analysis_dir is not None and sample.get('img_path'):
            record['img_path'] = str(sample['img_path'])
        return record

    def compute_metrics(self, results: list) -> dict:
        """Sum the records of all processes into the metrics (names: class doc)."""
        logger = MMLogger.get_current_instance()
        bad = [r.get('img_id', '?') for r in results if r.get('nonfinite')]
        if bad:
            logger.warning(f'WSOLMetric: {len(bad)} map(s) with NaN/inf evaluated as zero '
                           f'maps, e.g. {bad[:5]}')
        skipped = sum(1 for r in results if r.get('no_box'))
        if skipped:
            logger.warning(f'WSOLMetric: {skipped} image(s) without GT box left out of '
                           'the box metrics')
        if not results:
            raise ValueError('WSOLMetric: no results to evaluate')
        # BaseMetric.evaluate adds '<prefix>/' to these names
        metrics = summarize_records(results, self.thresholds, self.iou_thrs, self.loc_iou,
                                    prefix=None, fixed_thrs=self.fixed_thrs)
        if self.analysis_dir is not None:
            self._write_analysis(results, metrics)
        if self.scoremap_dir is not None:
            self._write_scoremap_files(results, metrics)
        return metrics

    def _save_scored_map(self, pred_map: np.ndarray, size: Tuple[int, int], img_id):
        """Write the protocol's map of ``pred_map`` (resized, normalised, float32) and
        return what to score: that float32 map (a NaN / inf map: itself, so that it
        is counted or refused as usual; zeros are written)."""
        map01, finite = prepare_map(pred_map, size)
        map32 = map01.astype(np.float32)
        save_scoremap(self.scoremap_dir, img_id, map32)
        return map32 if finite else pred_map

    def _write_scoremap_files(self, results: list, metrics: dict) -> None:
        """``predictions.txt`` and ``scoremaps.json`` next to the maps (class doc)."""
        with_scores = all('scores' in r for r in results)
        if with_scores:
            write_predictions(osp.join(self.scoremap_dir, PREDICTIONS_FILE),
                              [r['img_id'] for r in results], [r['scores'] for r in results])
        meta = write_meta(self.scoremap_dir, sizes=[r['size'] for r in results],
                          interval=self.cam_curve_interval, iou_thrs=self.iou_thrs,
                          loc_iou=self.loc_iou, num_images=len(results),
                          metrics=dict(metrics), predictions=with_scores)
        print_log(f'WSOLMetric: {len(results)} score maps written to {self.scoremap_dir} '
                  f'(evaluate them as {meta} says)', logger='current')

    def _write_analysis(self, results: list, metrics: dict) -> None:
        """The files of ``analysis_dir`` (see the class doc)."""
        classes = (self.dataset_meta or {}).get('classes')
        written = write_analysis(self.analysis_dir, results, self.thresholds, self.iou_thrs,
                                 self.loc_iou, class_names=classes)
        if 'best_thr' in metrics:
            if self.per_image_thr == 'best':
                thr, source, box_index = metrics['best_thr'], 'best', None
            else:
                thr, source, box_index = self.per_image_thr, 'given', 0
            lines = per_image_lines(results, self.thresholds, self.iou_thrs, self.loc_iou,
                                    threshold_index(self.thresholds, thr), box_index)
            written['per_image'] = osp.join(self.analysis_dir, 'per_image.jsonl')
            write_per_image_results(written['per_image'], lines, thr, source, self.loc_iou,
                                    classes)
        print_log(f'WSOLMetric: analysis written to {self.analysis_dir}: '
                  + ', '.join(osp.basename(p) for p in written.values()), logger='current')
