"""TeDLocDecoder: the decoder D of TeD-Loc, patch tokens -> pixel embeddings z."""
import math
from typing import Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule

from tedloc_mm.registry import MODELS


@MODELS.register_module()
class TeDLocDecoder(BaseModule):
    """Upsample the (B, C, h, w) token map to pixel embeddings z of width D = d.

    Architecture: ``num_stages`` = ceil(log2(patch_size / out_stride)) stages, each a
    bilinear resize (sizes spaced geometrically from h to the output size) followed
    by a 3x3 conv + norm + GELU at ``hidden_channels``; then a 1x1 conv to
    ``out_channels`` (no norm, no activation: z lives in the anchors' space, where
    signs and magnitudes matter for <z, t_k>). The input is first normalised per
    token (``LN2d``), as the EVA tokens carry no final norm.

    Output size: (h * patch_size // out_stride, w * patch_size // out_stride), i.e.
    stride ``out_stride`` in input pixels when the input is a multiple of the patch
    size (224 = 16 * 14). **The pseudo-label sampler must be configured with the
    same stride** (``pseudo_label_map`` must have exactly this size; the head checks).

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
        in_channels: token width C (1024 for EVA-L).
        out_channels: D, must equal the anchor dimension d.
        patch_size: the encoder's patch size (input pixels per token).
        out_stride: output stride in input pixels, an integer in [1, patch_size]
            (it need not divide ``patch_size``: 14 / 4 gives 3.5 pixels per token).
        hidden_channels: width of the upsampling stages.
        norm_cfg: norm of the upsampling stages.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 patch_size: int = 14,
                 out_stride: int = 4,
                 hidden_channels: int = 256,
                 norm_cfg: dict = dict(type='BN'),
                 act_cfg: dict = dict(type='GELU'),
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        if not (isinstance(out_stride, int) and 1 <= out_stride <= patch_size):
            raise ValueError(f'out_stride must be an int in [1, patch_size={patch_size}], '
                             f'got {out_stride!r}')
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.patch_size = patch_size
        self._out_stride = out_stride
        self.num_stages = max(0, math.ceil(math.log2(patch_size / out_stride) - 1e-9))
        self.in_norm = nn.LayerNorm(in_channels)
        stages = []
        ch = in_channels
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

    def output_size(self, token_hw: Tuple[int, int]) -> Tuple[int, int]:
        """(h', w') of z for a (h, w) token grid."""
        return tuple(s * self.patch_size // self._out_stride for s in token_hw)

    def _stage_sizes(self, token_hw):
        out_hw = self.output_size(token_hw)
        n = self.num_stages
        return [tuple(round(t * (o / t) ** ((i + 1) / n)) for t, o in zip(token_hw, out_hw))
                for i in range(n)]

    def forward(self, x: Union[torch.Tensor, Sequence[torch.Tensor]]) -> torch.Tensor:
        """(B, C, h, w) tokens (or a tuple whose last item is) -> z (B, D, h', w')."""
        if isinstance(x, (tuple, list)):
            x = x[-1]
        # plain ints (not traced size tensors): the stage sizes are computed with
        # round(), and torch.jit.trace (FLOP counting, export) would pass tensors
        token_hw = tuple(int(v) for v in x.shape[-2:])
        x = self.in_norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        for stage, size in zip(self.stages, self._stage_sizes(token_hw)):
            x = F.interpolate(x, size=size, mode='bilinear', align_corners=False)
            x = stage(x)
        out_hw = self.output_size(token_hw)
        if tuple(x.shape[-2:]) != out_hw:  # num_stages == 0 (out_stride == patch_size)
            x = F.interpolate(x, size=out_hw, mode='bilinear', align_corners=False)
        return self.proj(x)
