"""TeDLocDecoder: the decoder D of TeD-Loc, encoder map -> pixel embeddings z."""
import math
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule

from tedloc_mm.registry import MODELS


@MODELS.register_module()
class TeDLocDecoder(BaseModule):
    """Upsample the encoder's (B, C, h, w) map to pixel embeddings z of width D = d.

    The encoder can be any frozen backbone (:class:`~tedloc_mm.models.FrozenBackbone`):
    a ViT's patch tokens (stride = patch size, 14 for EVA-L), a CNN stage (stride 32
    for the last ResNet / ConvNeXt / EfficientNet stage, 16 for the one before), ...
    ``in_stride`` is that stride in input pixels; when the decoder is built inside
    :class:`~tedloc_mm.models.TeDLoc`, ``in_channels`` and ``in_stride`` default to the
    backbone's ``out_channels`` / ``out_stride``.

    Architecture: optionally (``reduce_channels``) a 1x1 conv + norm + GELU to
    ``reduce_channels`` at the encoder's resolution; then ``num_stages`` =
    ceil(log2(in_stride / out_stride)) stages, each a
    bilinear resize (sizes spaced geometrically from h to the output size) followed
    by a 3x3 conv + norm + GELU at ``hidden_channels``; then a 1x1 conv to
    ``out_channels`` (no norm, no activation: z lives in the anchors' space, where
    signs and magnitudes matter for <z, t_k>). The input is first normalised per
    position (``LN`` over channels), as the EVA tokens carry no final norm.

    Output size: (H // out_stride, W // out_stride) for an (H, W) input image when
    ``forward`` gets ``input_hw`` (TeDLoc passes it: exact for any input size and
    any rounding of the backbone), else (h * in_stride // out_stride,
    w * in_stride // out_stride), the same when H, W are multiples of ``in_stride``.
    The configs give the pseudo-label sampler the same grid (``grid_stride``); the head
    maps pseudo-labels of any other grid onto this one.

    Why stride 4 and 256 hidden channels by default (EVA-L, 224 px, D = 768):

    * memory: a full-resolution (stride 1) map of z is 224^2 * 768 * 4 B = 154 MB per
      image (205 MB at D = 1024), kept for backward together with each stage's
      activations; with batch 16-32 that is 5-10 GB for z alone, mostly spent on
      pixels that are 4-16x oversampled relative to the 16x16 token grid. At stride 4
      (56 x 56) z is 9.6 MB per image and a 256-wide stage 3.2 MB.
    * accuracy: the information comes from 16 x 16 tokens (14 px each). Stride 4
      gives 3.5 output pixels per token in each direction, enough for the sampler
      to draw tens of FG/BG pixels per image and for the map to follow object
      boundaries more finely than a token; WSOL maps are evaluated after bilinear
      resizing to 224 (boxes from thresholded maps), where 4-px quantisation is far
      below the box IoU tolerance. Stride 1 would add cost, not information.
    * width: the hidden width only needs to carry spatial refinement; the 1x1
      projection to D (768, the CLIP text width) does the alignment. 256 keeps the
      decoder at about 3 M parameters, tiny next to the 303 M frozen encoder.

    Args:
        in_channels: encoder channels C (1024 for EVA-L, 2048 for ResNet-50 stage 4).
        out_channels: D, must equal the anchor dimension d.
        in_stride: the encoder's stride in input pixels (a ViT's patch size).
        out_stride: output stride in input pixels, an integer in [1, in_stride]
            (it need not divide ``in_stride``: 14 / 4 gives 3.5 pixels per token).
        hidden_channels: width of the upsampling stages.
        reduce_channels: None (default) or the width of a 1x1 conv + norm + GELU
            applied before the first stage, at the encoder's resolution. Why: a wide
            encoder map makes the first 3x3 stage, run at the *upsampled* size, the
            decoder's dominant cost (EfficientNet-Lite0 stages 5 + 8: 1392 channels;
            1392 * 128 * 9 MACs per output pixel at 28 x 28 = 1.26 GMACs per 224 px
            image); reducing to 128 first at 14 x 14 costs 1392 * 128 * 196 = 35 M
            MACs and the 3x3 stage then reads 128 channels (0.12 GMACs), see
            ``benchmarks/train_step_time.py``.
        norm_cfg: norm of the upsampling stages.
        patch_size: the former name of ``in_stride`` (ViT encoders); accepted for
            existing configs.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 in_stride: Optional[int] = None,
                 out_stride: int = 4,
                 hidden_channels: int = 256,
                 reduce_channels: Optional[int] = None,
                 norm_cfg: dict = dict(type='BN'),
                 act_cfg: dict = dict(type='GELU'),
                 patch_size: Optional[int] = None,
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        if in_stride is None:
            in_stride = patch_size
        elif patch_size is not None and patch_size != in_stride:
            raise ValueError(f'in_stride={in_stride} and its old name patch_size='
                             f'{patch_size} differ; give in_stride only')
        if not (isinstance(in_stride, int) and in_stride >= 1):
            raise ValueError(f'in_stride (the encoder stride in input pixels) must be a '
                             f'positive int, got {in_stride!r}')
        if not (isinstance(out_stride, int) and 1 <= out_stride <= in_stride):
            raise ValueError(f'out_stride must be an int in [1, in_stride={in_stride}], '
                             f'got {out_stride!r}')
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.in_stride = in_stride
        self._out_stride = out_stride
        self.num_stages = max(0, math.ceil(math.log2(in_stride / out_stride) - 1e-9))
        self.in_norm = nn.LayerNorm(in_channels)
        ch = in_channels
        self.reduce = None
        if reduce_channels is not None:
            if not (isinstance(reduce_channels, int) and reduce_channels >= 1):
                raise ValueError(f'reduce_channels must be None or a positive int, got '
                                 f'{reduce_channels!r}')
            self.reduce = ConvModule(ch, reduce_channels, 1, norm_cfg=norm_cfg,
                                     act_cfg=act_cfg)
            ch = reduce_channels
        stages = []
        for _ in range(self.num_stages):
            stages.append(ConvModule(ch, hidden_channels, 3, padding=1, norm_cfg=norm_cfg,
                                     act_cfg=act_cfg))
            ch = hidden_channels
        self.stages = nn.ModuleList(stages)
        self.proj = nn.Conv2d(ch, out_channels, 1)

    @property
    def out_stride(self) -> int:
        """Output stride in input pixels (the pseudo-label sampler must use the same)."""
        return self._out_stride

    @property
    def patch_size(self) -> int:
        """The former name of :attr:`in_stride`."""
        return self.in_stride

    def output_size(self, feat_hw: Tuple[int, int],
                    input_hw: Optional[Tuple[int, int]] = None) -> Tuple[int, int]:
        """(h', w') of z for an (h, w) encoder map (of an (H, W) input, if given)."""
        if input_hw is not None:
            return tuple(int(s) // self._out_stride for s in input_hw)
        return tuple(s * self.in_stride // self._out_stride for s in feat_hw)

    def _stage_sizes(self, feat_hw, out_hw):
        n = self.num_stages
        return [tuple(round(t * (o / t) ** ((i + 1) / n)) for t, o in zip(feat_hw, out_hw))
                for i in range(n)]

    def forward(self, x: Union[torch.Tensor, Sequence[torch.Tensor]],
                input_hw: Optional[Tuple[int, int]] = None) -> torch.Tensor:
        """(B, C, h, w) map (or a tuple whose last item is) -> z (B, D, h', w').

        ``input_hw``: (H, W) of the network input; fixes (h', w') to
        (H // out_stride, W // out_stride), see :meth:`output_size`.
        """
        if isinstance(x, (tuple, list)):
            x = x[-1]
        # plain ints (not traced size tensors): the stage sizes are computed with
        # round(), and torch.jit.trace (FLOP counting, export) would pass tensors
        feat_hw = tuple(int(v) for v in x.shape[-2:])
        out_hw = self.output_size(feat_hw, input_hw)
        x = self.in_norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        if self.reduce is not None:
            x = self.reduce(x)
        for stage, size in zip(self.stages, self._stage_sizes(feat_hw, out_hw)):
            x = F.interpolate(x, size=size, mode='bilinear', align_corners=False)
            x = stage(x)
        if tuple(x.shape[-2:]) != out_hw:  # num_stages == 0 (out_stride == in_stride)
            x = F.interpolate(x, size=out_hw, mode='bilinear', align_corners=False)
        return self.proj(x)
