"""TeDLoc: the top-level model (frozen encoder E -> decoder D -> PatchMILHead)."""
from typing import List, Optional, Union

import torch
from mmengine.model import BaseModel
from mmpretrain.structures import DataSample

from tedloc_mm.registry import MODELS

#: CLIP's normalisation (the EVA models were trained with it), in 0-255 units
CLIP_MEAN = [0.48145466 * 255, 0.4578275 * 255, 0.40821073 * 255]
CLIP_STD = [0.26862954 * 255, 0.26130258 * 255, 0.27577711 * 255]


@MODELS.register_module()
class TeDLoc(BaseModel):
    """TeD-Loc (paper §3): z = D(E(x)); losses and predictions from PatchMILHead.

    Only the decoder and the head's g have ``requires_grad`` (the encoder is frozen,
    the anchors are a buffer). Use ``TrainableParamsOptimWrapperConstructor`` so that
    the optimizer receives exactly those parameters.

    Modes of ``forward(inputs, data_samples, mode)``:
        ``'loss'``    -> dict(loss_kd, loss_patch, loss_img); needs ``gt_label`` and
                         ``pseudo_label_map`` in each data sample.
        ``'predict'`` -> list of :class:`DataSample` with ``pred_score`` (K,),
                         ``pred_label`` (1,), ``pred_map`` (H, W) at ``img_shape``.
        ``'tensor'``  -> (class logits f(h, .) (B, K), g logits (B, h', w')).

    Args:
        backbone, neck, head: configs (``FrozenBackbone`` / ``FrozenEVA``,
            ``TeDLocDecoder``, ``PatchMILHead``). The neck's ``in_channels`` and
            ``in_stride`` default to the backbone's ``out_channels`` / ``out_stride``.
        data_preprocessor: defaults to MMPretrain's ``ClsDataPreprocessor`` with CLIP
            mean/std and BGR -> RGB.

    Frozen-feature cache (off by default): while ``feature_cache`` is a dict (the
    ``FrozenFeatureCacheHook`` sets it for a training run after checking that the
    pipelines allow it), the encoder output E(x) of each sample is kept under
    :meth:`feature_cache_key` (mode, image id, flip, shapes) and reused the next
    time that key comes: valid only while E is frozen and the pipeline gives the
    same input for the same key (fixed resize, flips), which the hook checks.
    """

    def __init__(self,
                 backbone: dict,
                 neck: dict,
                 head: dict,
                 data_preprocessor: Optional[Union[dict, torch.nn.Module]] = None,
                 init_cfg=None):
        if data_preprocessor is None:
            data_preprocessor = dict(mean=CLIP_MEAN, std=CLIP_STD, to_rgb=True)
        if isinstance(data_preprocessor, dict):
            data_preprocessor = dict(data_preprocessor)
            data_preprocessor.setdefault('type', 'ClsDataPreprocessor')
            data_preprocessor = MODELS.build(data_preprocessor)
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        self.neck = MODELS.build(self._neck_cfg(neck, self.backbone))
        self.head = MODELS.build(head)
        #: None (off) or {feature_cache_key: E(x) of one sample (C, h, w)}
        self.feature_cache = None

    @staticmethod
    def _neck_cfg(neck: dict, backbone: torch.nn.Module) -> dict:
        """The neck config with ``in_channels`` / ``in_stride`` taken from the backbone's
        ``out_channels`` / ``out_stride`` where not given; given ones must agree."""
        neck = dict(neck)
        declared = dict(in_channels=getattr(backbone, 'out_channels', None),
                        in_stride=getattr(backbone, 'out_stride', None))
        if neck.get('in_stride') is None and neck.get('patch_size') is not None:
            neck['in_stride'] = neck.pop('patch_size')  # its former name
        for key, value in declared.items():
            if value is None:
                continue
            if neck.get(key) is None:
                neck[key] = value
            elif neck[key] != value:
                raise ValueError(f'neck.{key}={neck[key]} differs from the backbone\'s '
                                 f'{value} ({type(backbone).__name__}); leave neck.{key} '
                                 'unset to take the backbone\'s')
        return neck

    @property
    def out_stride(self) -> int:
        """Stride of z in input pixels (the head maps the sampler's pseudo-labels onto
        this grid, whatever the sampler's own)."""
        return self.neck.out_stride

    @staticmethod
    def feature_cache_key(mode: str, data_sample) -> tuple:
        """What identifies one sample's encoder input in the frozen-feature cache."""
        meta = data_sample.metainfo
        if meta.get('img_id') is None:
            raise KeyError('the frozen-feature cache needs img_id in every data sample\'s '
                           'metainfo (PackWSOLInputs sets it)')
        return (mode, meta['img_id'], bool(meta.get('flip', False)),
                meta.get('flip_direction'), tuple(meta.get('img_shape', ())),
                tuple(meta.get('scale_factor', ())))

    def encode(self, inputs: torch.Tensor, data_samples: Optional[List[DataSample]] = None,
               mode: str = 'tensor') -> torch.Tensor:
        """E(x) (B, C, h, w), from :attr:`feature_cache` where it holds the sample."""
        cache = self.feature_cache
        if cache is None or data_samples is None:
            return self.backbone(inputs)
        if not getattr(self.backbone, 'frozen', False):
            raise RuntimeError('the frozen-feature cache is on but the backbone is not '
                               'frozen: cached features would go stale')
        keys = [self.feature_cache_key(mode, ds) for ds in data_samples]
        todo = [i for i, k in enumerate(keys) if k not in cache]
        if todo:
            feats = self.backbone(inputs[todo] if len(todo) < len(keys) else inputs)
            for i, f in zip(todo, feats):
                cache[keys[i]] = f.detach().clone()  # own storage, not a view of the batch
        return torch.stack([cache[k] for k in keys])

    def extract_feat(self, inputs: torch.Tensor, data_samples: Optional[List[DataSample]] = None,
                     mode: str = 'tensor') -> torch.Tensor:
        """(B, 3, H, W) -> pixel embeddings z (B, D, h', w')."""
        # the input size fixes z's size to (H // out_stride, W // out_stride) whatever
        # the backbone's rounding (CNN stages round odd sizes up)
        return self.neck(self.encode(inputs, data_samples, mode),
                         input_hw=tuple(inputs.shape[-2:]))

    def forward(self, inputs: torch.Tensor, data_samples: Optional[List[DataSample]] = None,
                mode: str = 'tensor'):
        if mode == 'tensor':
            return self.head(self.extract_feat(inputs))
        if mode == 'loss':
            return self.head.loss(self.extract_feat(inputs, data_samples, mode), data_samples,
                                  input_hw=tuple(inputs.shape[-2:]))
        if mode == 'predict':
            z = self.extract_feat(inputs, data_samples, mode)
            if data_samples is None:
                data_samples = [DataSample(metainfo=dict(img_shape=tuple(inputs.shape[-2:])))
                                for _ in range(inputs.shape[0])]
            return self.head.predict(z, data_samples)
        raise RuntimeError(f'Invalid mode "{mode}": use "loss", "predict" or "tensor".')
