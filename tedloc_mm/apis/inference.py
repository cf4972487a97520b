"""The function API: ``init_localizer`` and ``inference_localizer``.

    model = init_localizer('configs/tedloc_eva-l_cub.py', 'work_dirs/.../best.pth')
    result = inference_localizer(model, 'bird.jpg')      # one image: one result
    result.topk[0]       # {'label': 12, 'name': 'Cardinal', 'score': 0.93}
    result.bbox          # [x0, y0, x1, y1] in the original image's pixels
    result.pred_scores   # float32 (K,): every class's score
    results = inference_localizer(model, ['bird.jpg', img_bgr_array])   # a list: a list

As MMPretrain's ``inference_model``, one image (a path or an array) gives one result.

Both are thin users of :class:`~tedloc_mm.apis.WSOLInferencer`: ``init_localizer``
returns its model, ``inference_localizer`` runs it. Coordinates and the result type:
:mod:`tedloc_mm.apis.inference_steps`.
"""
from typing import List, Optional, Sequence, Union  # noqa: F401

import numpy as np
import torch
from mmengine.config import Config

from .inference_steps import ImageInput, LocalizationResult
from .wsol_inferencer import WSOLInferencer


def init_localizer(config: Union[str, Config],
                   checkpoint: Optional[str] = None,
                   device: Union[str, torch.device] = 'cpu',
                   cam_threshold: Union[None, float, str] = None,
                   cfg_options: Optional[dict] = None,
                   trust_checkpoint: bool = False) -> torch.nn.Module:
    """Build a localizer from a config and load a checkpoint: the model of a
    :class:`~tedloc_mm.apis.WSOLInferencer` (which :func:`inference_localizer` reuses).

    Args:
        config: config file or :class:`~mmengine.config.Config`.
        checkpoint: a TeD-Loc checkpoint (Runner or plain state dict). None keeps the
            weights of the config (random decoder; demos and tests only).
        device: where the model runs.
        cam_threshold: the CAM threshold of the boxes: a number, a metrics JSON file
            of ``tools/test.py --out``, or None for the checkpoint's last validation
            (else 0.5); see :mod:`tedloc_mm.evaluation.cam_threshold`.
        cfg_options: overrides merged into the config.
        trust_checkpoint: read ``checkpoint`` with full unpickling
            (``weights_only=False``); only for a file you trust, as unpickling can run
            code. By default anything beyond weights and the Runner's bookkeeping is
            refused.

    Checkpoint, backbone and anchor handling: see :class:`WSOLInferencer` (a
    checkpoint without the model's weights is refused there).

    Returns:
        the model in eval mode on ``device`` with ``model.cfg``, ``model.dataset_meta``
        (``{'classes': names}`` or ``{}``), ``model.cam_threshold`` and
        ``model.cam_threshold_source``.
    """
    if not isinstance(config, (str, Config)):
        raise TypeError(f'config must be a file path or a Config, got {type(config).__name__}')
    inferencer = WSOLInferencer(config, checkpoint, device=device,
                                   cam_threshold=cam_threshold, cfg_options=cfg_options,
                                   show_progress=False, trust_checkpoint=trust_checkpoint)
    model = inferencer.model
    model._wsol_inferencer = inferencer  # reused by inference_localizer
    return model


def inference_localizer(model: torch.nn.Module,
                        images: Union[ImageInput, Sequence[ImageInput]],
                        topk: int = 5,
                        cam_threshold: Union[None, float, str] = None,
                        batch_size: int = 1
                        ) -> Union[LocalizationResult, List[LocalizationResult]]:
    """Classes, localization map and box of each image (see the module doc), through
    the model's :class:`~tedloc_mm.apis.WSOLInferencer`.

    Args:
        model: from :func:`init_localizer` (needs ``model.cfg``).
        images: a path, a BGR uint8 array, or a list of them.
        topk: number of classes to return.
        cam_threshold: overrides ``model.cam_threshold`` (number or metrics JSON).
        batch_size: images per forward pass (the results do not depend on it).

    Returns:
        for one image (a path or an array) its :class:`LocalizationResult`; for a
        list, one result per image, in order. ``result.pred_scores`` holds the full
        class-score vector.
    """
    inferencer = getattr(model, '_wsol_inferencer', None)
    if inferencer is None or inferencer.model is not model:
        inferencer = WSOLInferencer(model, show_progress=False)
        model._wsol_inferencer = inferencer
    single = isinstance(images, (str, np.ndarray))
    results = inferencer([images] if single else list(images), batch_size=batch_size,
                         topk=topk, cam_threshold=cam_threshold, as_dict=False)
    return results[0] if single else results
