"""WSOLCurvesHook: the figure of the curves WSOLMetric wrote, at the end of a test run."""
import os.path as osp

from mmengine.dist import is_main_process
from mmengine.hooks import Hook

from .wsol_curves import load_curves, plot_wsol_curves


class WSOLCurvesHook(Hook):
    """Draw ``<analysis_dir>/curves.png`` from the ``curves.json`` that
    ``WSOLMetric(analysis_dir=...)`` has just written, and hand the figure and the
    curves to the visualizer's ``TensorboardVisBackend`` (under its default name) when
    the config has one: image ``wsol_curves``, scalars
    ``wsol_curve/box_acc_<largest|all>@<iou>`` with step = CAM threshold x 100.

    Runs in ``after_test_epoch``, on the main process (where the metric wrote the
    files), while the visualizer's event file is still open. ``tools/test.py
    --analysis-dir`` registers it.

    Args:
        analysis_dir: the metric's ``analysis_dir``.
        label: the run's name in the figure's legend.
    """

    priority = 'LOW'

    def __init__(self, analysis_dir: str, label: str = 'test'):
        self.analysis_dir = analysis_dir
        self.label = label

    def after_test_epoch(self, runner, metrics=None) -> None:
        path = osp.join(self.analysis_dir, 'curves.json')
        if not is_main_process() or not osp.isfile(path):
            return
        curves = load_curves([path])[0]
        image = plot_wsol_curves([(self.label, curves)],
                                 osp.join(self.analysis_dir, 'curves.png'))
        backend = runner.visualizer.get_backend('TensorboardVisBackend')
        if backend is None:
            return
        backend.add_image('wsol_curves', image, step=0)
        for variant, per_iou in curves.get('box_acc', {}).items():
            for iou, values in per_iou.items():
                for thr, value in zip(curves['cam_thresholds'], values):
                    backend.add_scalar(f'wsol_curve/box_acc_{variant}@{iou}', value,
                                       step=int(round(thr * 100)))
