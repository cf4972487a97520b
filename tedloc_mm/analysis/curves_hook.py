"""WSOLCurvesHook: the figure of the curves WSOLMetric wrote, at the end of a test run."""
import os.path as osp
from typing import Optional

from mmengine.dist import is_main_process
from mmengine.hooks import Hook

from tedloc_mm.registry import HOOKS
from .wsol_curves import load_curves, plot_wsol_curves


@HOOKS.register_module()
class WSOLCurvesHook(Hook):
    """Draw ``<analysis_dir>/curves.png`` from the ``curves.json`` that
    ``WSOLMetric(analysis_dir=...)`` has just written, and hand the figure and the
    curves to the visualizer's ``TensorboardVisBackend`` (under its default name) when
    the config has one: image ``wsol_curves``, scalars
    ``wsol_curve/box_acc_<largest|all>@<iou>`` with step = CAM threshold x 100.

    Runs in ``after_test_epoch``, on the main process (where the metric wrote the
    files), while the visualizer's event file is still open. Our configs have it as
    ``default_hooks.curves``: it acts whenever the test evaluator's WSOLMetric has an
    ``analysis_dir`` (``tools/test.py --analysis-dir DIR``, or with any tool
    ``--cfg-options test_evaluator.analysis_dir=DIR``) and does nothing otherwise.

    Args:
        analysis_dir: where ``curves.json`` is; default: the ``analysis_dir`` of the
            test evaluator's WSOLMetric.
        label: the run's name in the figure's legend; default: the config file's name
            and the folder's.
    """

    priority = 'LOW'

    def __init__(self, analysis_dir: Optional[str] = None, label: Optional[str] = None):
        self.analysis_dir = analysis_dir
        self.label = label

    @staticmethod
    def metric_analysis_dir(runner) -> Optional[str]:
        """The ``analysis_dir`` of the test evaluator's first metric that has one."""
        evaluator = getattr(runner, 'test_evaluator', None)
        for metric in getattr(evaluator, 'metrics', None) or []:
            if getattr(metric, 'analysis_dir', None):
                return metric.analysis_dir
        return None

    def after_test_epoch(self, runner, metrics=None) -> None:
        analysis_dir = self.analysis_dir or self.metric_analysis_dir(runner)
        if analysis_dir is None:
            return
        label = self.label or (
            f'{osp.splitext(osp.basename(runner.cfg.filename or "test"))[0]} '
            f'({osp.basename(osp.normpath(analysis_dir))})')
        path = osp.join(analysis_dir, 'curves.json')
        if not is_main_process() or not osp.isfile(path):
            return
        curves = load_curves([path])[0]
        image = plot_wsol_curves([(label, curves)], osp.join(analysis_dir, 'curves.png'))
        backend = runner.visualizer.get_backend('TensorboardVisBackend')
        if backend is None:
            return
        backend.add_image('wsol_curves', image, step=0)
        for variant, per_iou in curves.get('box_acc', {}).items():
            for iou, values in per_iou.items():
                for thr, value in zip(curves['cam_thresholds'], values):
                    backend.add_scalar(f'wsol_curve/box_acc_{variant}@{iou}', value,
                                       step=int(round(thr * 100)))
