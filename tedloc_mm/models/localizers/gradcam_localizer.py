"""GradCAMLocalizer: an MMPretrain classifier evaluated as a WSOL localizer (the CAM baseline)."""
from typing import List, Optional, Sequence, Union

import torch
from mmpretrain.models import ImageClassifier
from mmpretrain.structures import DataSample

from tedloc_mm.registry import MODELS


@MODELS.register_module()
class GradCAMLocalizer(ImageClassifier):
    """An ``ImageClassifier`` whose ``predict`` also returns its Grad-CAM as ``pred_map``.

    It subclasses MMPretrain's ``ImageClassifier`` so that a classifier checkpoint
    loads unchanged (same keys) and ``tools/test.py`` with ``WSOLMetric`` evaluates
    the CAM baseline the same way as TeD-Loc. Training is the classifier's own.

    The map is Grad-CAM (``pytorch_grad_cam``, as in
    :mod:`tedloc_mm.pseudo_labels.classifier_cam`) at the input resolution, for
    the ground-truth class (``cam_class='gt'``: the wsolevaluation protocol, which
    localizes the labelled class) or the predicted one (``'pred'``: no label needed).

    Args:
        cam_class: ``'gt'`` or ``'pred'``.
        target_layer: dotted module name for Grad-CAM (or a list: maps averaged);
            the default is the last transformer block's first norm (see
            ``default_target_layer``).
        cam_cfg: further ``ClassifierGradCAM`` arguments, e.g. the feature-affinity
            refinement ``dict(affinity_layers=['backbone.blocks.4'])``, so that the
            baseline is the same map as pseudo-labels made with those options.
        **kwargs: ``ImageClassifier`` arguments (backbone, neck, head, ...).
    """

    def __init__(self, cam_class: str = 'gt',
                 target_layer: Union[None, str, Sequence[str]] = None,
                 cam_cfg: Optional[dict] = None, **kwargs):
        super().__init__(**kwargs)
        if cam_class not in ('gt', 'pred'):
            raise ValueError(f"cam_class must be 'gt' or 'pred', got {cam_class!r}")
        self.cam_class = cam_class
        self.target_layer = target_layer
        self.cam_cfg = dict(cam_cfg or {})

    def predict(self, inputs: torch.Tensor,
                data_samples: Optional[List[DataSample]] = None, **kwargs) -> List[DataSample]:
        from tedloc_mm.pseudo_labels.classifier_cam import ClassifierGradCAM
        data_samples = super().predict(inputs, data_samples, **kwargs)
        if self.cam_class == 'gt':
            missing = [i for i, s in enumerate(data_samples) if 'gt_label' not in s]
            if missing:
                raise KeyError(f"cam_class='gt' needs gt_label; sample(s) {missing} have "
                               "none (use cam_class='pred' for unlabelled images)")
            labels = [int(s.gt_label[0]) for s in data_samples]
        else:
            labels = [int(s.pred_label[0]) for s in data_samples]
        gradcam = ClassifierGradCAM(self, self.target_layer, **self.cam_cfg)
        try:
            # the Runner's test loop runs under no_grad; Grad-CAM needs a backward pass
            with torch.enable_grad():
                maps = gradcam(inputs, labels)
        finally:
            gradcam.release()
        for sample, cam in zip(data_samples, maps):
            sample.set_field(torch.from_numpy(cam), 'pred_map', dtype=torch.Tensor)
        return data_samples
