"""FrozenBackbone: any MMPretrain backbone as TeD-Loc's frozen encoder E (paper §3)."""
import os.path as osp
from collections import OrderedDict
from typing import Dict, List, Optional, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.logging import print_log
from mmengine.model import BaseModule
from mmengine.runner.checkpoint import CheckpointLoader
from mmpretrain.models.backbones import VisionTransformer

from tedloc_mm.registry import MODELS, build
from ..utils.eva_checkpoint import _unwrap

#: ``checkpoint`` value that asks the backbone class for the weights its package ships
PACKAGED = 'packaged'
_FUSES = (None, 'concat', 'tuple')


@MODELS.register_module()
class FrozenBackbone(BaseModule):
    """Wrap an MMPretrain (or tedloc) backbone: frozen, eval mode, one (B, C, h, w) map.

    The stage(s) are chosen by the backbone's own ``out_indices`` (as in MMPretrain);
    with several stages, ``fuse='concat'`` resizes each map (bilinear) to the finest
    one and concatenates the channels, ``fuse='tuple'`` returns them all as a tuple
    (MMSegmentation's decode heads pick from it with ``in_index``). A ViT must return
    feature maps (``out_type='featmap'``).

    The inner backbone is built in the ``'tedloc'`` scope, so a config of another
    scope (``default_scope='mmseg'``) can name it by its bare name.

    With ``frozen=True`` (TeD-Loc's setting) every parameter has
    ``requires_grad=False``, the forward pass runs under ``torch.no_grad()`` and the
    wrapped module stays in eval mode whatever ``train()`` is called with (BatchNorm
    statistics, dropout and drop-path never change or act).

    Weights are read in :meth:`init_weights`, which the Runner calls before training
    only: testing or resuming a TeD-Loc checkpoint (which holds the backbone weights,
    or restores them through ``LeanCheckpointHook`` from ``self.checkpoint``) needs no
    backbone file.

    Args:
        backbone: config of the backbone, e.g.
            ``dict(type='ResNet', depth=50, out_indices=(3, ))``,
            ``dict(type='ConvNeXt', arch='base', out_indices=(3, ))``,
            ``dict(type='VisionTransformer', arch='b', out_type='featmap')``,
            ``dict(type='EfficientNetLite', out_indices=(8, ))``.
        checkpoint: a local file in MMPretrain / MMEngine layout (a plain state dict or
            ``{'state_dict': ...}``), ``'packaged'`` for the weights a backbone class
            ships in an installed package (it must have ``packaged_checkpoint()``,
            e.g. :class:`EfficientNetLite`), or None for the backbone's random init.
            Read with ``torch.load(weights_only=True)`` (MMEngine's loader, see
            :mod:`tedloc_mm.fileio.checkpoint`): a file needing more is refused; list
            a file you trust in the environment variable ``TEDLOC_TRUST_CHECKPOINTS``
            to read it with full unpickling.
        prefix: key prefix of the backbone weights in the file: ``'backbone.'`` for a
            full MMPretrain classifier checkpoint (its neck / head keys are dropped).
            A file without any key under ``prefix`` is read as a bare backbone state
            dict.
        strict: the file must hold exactly the backbone's weights (True: a missing
            one would stay random without notice).
        fuse: None (the backbone must return exactly one map), ``'concat'`` or
            ``'tuple'`` (every map, in the backbone's order; ``out_stride`` and
            ``out_channels`` are then tuples, one entry per map).
        out_stride, out_channels: declare them instead of measuring. Default: taken
            from the backbone when it declares them (``out_strides`` /
            ``out_channels`` like :class:`EfficientNetLite`, a ViT's ``patch_size`` /
            ``embed_dims``), else measured by one dry forward at ``probe_size``.
        probe_size: side of the dry-forward input (224 = 16 * 14 = 7 * 32).
        frozen: see above (False trains the backbone, for ablations; Grad-CAM through
            the encoder also needs it, as frozen activations carry no gradient).
        tuple_out: return ``(map, )``, the form MMPretrain's necks and heads take
            (``LinearClsHead`` reads ``feats[-1]``, which of a bare tensor is its last
            sample): set it when this is the backbone of an ``ImageClassifier``.

    Forward:
        (B, 3, H, W) normalised images -> (B, out_channels, H / out_stride,
        W / out_stride) (rounded as the backbone rounds; exact when H and W are
        multiples of ``out_stride``), or a 1-tuple of it with ``tuple_out``; with
        ``fuse='tuple'`` a tuple of one such map per stage.
    """

    #: attribute (and state-dict key: ``backbone.net.*`` in TeD-Loc) of the wrapped backbone
    encoder_name = 'net'

    def __init__(self,
                 backbone: Union[dict, nn.Module],
                 checkpoint: Optional[str] = None,
                 prefix: str = 'backbone.',
                 strict: bool = True,
                 fuse: Optional[str] = None,
                 out_stride: Optional[int] = None,
                 out_channels: Optional[int] = None,
                 probe_size: int = 224,
                 frozen: bool = True,
                 tuple_out: bool = False,
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        if fuse not in _FUSES:
            raise ValueError(f'fuse must be one of {_FUSES}, got {fuse!r}')
        if isinstance(backbone, nn.Module):
            encoder = backbone
        else:
            # our scope whatever the config's default scope: an 'mmseg' config would
            # otherwise look a bare 'EfficientNetLite' up in MMSegmentation's registry
            encoder = build(MODELS, backbone)
        self.add_module(self.encoder_name, encoder)
        self.prefix = prefix
        self.strict = strict
        self.fuse = fuse
        self.frozen = frozen
        self.tuple_out = tuple_out
        if checkpoint == PACKAGED and not hasattr(encoder, 'packaged_checkpoint'):
            raise ValueError(f"checkpoint='packaged': {type(encoder).__name__} ships no "
                             'weights; give a local checkpoint file or None')
        self.checkpoint = self._resolve(checkpoint, missing_ok=True)
        if frozen:
            for p in encoder.parameters():
                p.requires_grad_(False)
            self.train(False)
        if out_stride is None or out_channels is None:
            declared = self._declared_geometry()
            if declared is None:
                declared = self.measure_geometry(probe_size)
            out_stride = declared[0] if out_stride is None else out_stride
            out_channels = declared[1] if out_channels is None else out_channels
        if fuse == 'tuple':
            self.out_stride = tuple(int(v) for v in out_stride)
            self.out_channels = tuple(int(v) for v in out_channels)
        else:
            self.out_stride = int(out_stride)
            self.out_channels = int(out_channels)

    @property
    def encoder(self) -> nn.Module:
        """The wrapped backbone."""
        return self._modules[self.encoder_name]

    # ------------------------------------------------------------------ geometry
    def _fused(self, strides: List[int], channels: List[int]) -> tuple:
        if self.fuse == 'tuple':
            return tuple(strides), tuple(channels)
        if len(strides) > 1 and self.fuse is None:
            raise ValueError(f'{type(self.encoder).__name__} returns {len(strides)} maps '
                             f'(strides {strides}); select one stage with out_indices or '
                             "set fuse='concat'")
        return min(strides), sum(channels)

    def _declared_geometry(self) -> Optional[Tuple[int, int]]:
        """(stride, channels) the backbone states itself, or None to measure."""
        enc = self.encoder
        if hasattr(enc, 'out_strides') and hasattr(enc, 'out_channels'):
            return self._fused(list(enc.out_strides), list(enc.out_channels))
        # a plain ViT (and EVA, BEiT, DeiT: subclasses) keeps its patch grid; a Swin
        # (patch_embed and embed_dims too, but downsampling stages) is measured
        if isinstance(enc, VisionTransformer):
            if getattr(enc, 'out_type', 'featmap') != 'featmap':
                raise ValueError(f"{type(enc).__name__}: set out_type='featmap' (got "
                                 f'{enc.out_type!r}): TeD-Loc needs a feature map')
            patch = enc.patch_embed.projection.stride
            n = len(getattr(enc, 'out_indices', [-1]))
            return self._fused([int(patch[0])] * n, [int(enc.embed_dims)] * n)
        return None

    @torch.no_grad()
    def measure_geometry(self, probe_size: int = 224) -> Tuple[int, int]:
        """(stride, channels) of the output, from one forward of a zero image."""
        was_training = self.encoder.training
        self.encoder.eval()
        maps = self._maps(self.encoder(torch.zeros(1, 3, probe_size, probe_size)))
        self.encoder.train(was_training)
        strides = []
        for m in maps:
            h = int(m.shape[-2])
            if probe_size % h:
                raise ValueError(f'{type(self.encoder).__name__}: a {probe_size} px probe '
                                 f'gives a {h}-row map, not an integer stride; declare '
                                 'out_stride or change probe_size')
            strides.append(probe_size // h)
        return self._fused(strides, [int(m.shape[1]) for m in maps])

    # ------------------------------------------------------------------ weights
    def _resolve(self, checkpoint: Optional[str], missing_ok: bool = False) -> Optional[str]:
        """'packaged' -> the file in its installed package (kept as is if missing_ok
        and the package is absent: :meth:`init_weights` then raises the clear error)."""
        if checkpoint != PACKAGED:
            return checkpoint
        try:
            return self.encoder.packaged_checkpoint()
        except (ImportError, FileNotFoundError):
            if missing_ok:
                return checkpoint
            raise

    def init_weights(self):
        """Load ``checkpoint`` or, without one, run the backbone's random init."""
        if self.checkpoint is None:
            self.encoder.init_weights()
            return
        self.checkpoint = self._resolve(self.checkpoint)
        n_tensors, n_values = self.load_checkpoint_file(self.checkpoint)
        print_log(f'{type(self).__name__}: loaded {n_tensors} tensors '
                  f'({n_values / 1e6:.1f} M values) from {self.checkpoint}',
                  logger='current')

    def _backbone_state_dict(self, filename: str) -> Dict[str, torch.Tensor]:
        obj = CheckpointLoader.load_checkpoint(filename, map_location='cpu')
        sd = _unwrap(obj)
        convert = getattr(self.encoder, 'convert_checkpoint', None)
        if convert is not None:  # a foreign layout the backbone knows (packaged weights)
            sd = convert(sd)
        if self.prefix and any(k.startswith(self.prefix) for k in sd):
            n = len(self.prefix)
            sd = OrderedDict((k[n:], v) for k, v in sd.items() if k.startswith(self.prefix))
        return sd

    def load_checkpoint_file(self, filename: str) -> Tuple[int, int]:
        """Load the backbone weights from ``filename``; returns (tensors, values)."""
        if not osp.isfile(filename):
            raise FileNotFoundError(
                f'{type(self.encoder).__name__} checkpoint {filename!r} does not exist. '
                'Provide a local file: a full MMPretrain classifier checkpoint (keys '
                f"'backbone.*', prefix='backbone.') or a bare backbone state dict, or set "
                'checkpoint=None for random weights.')
        sd = self._backbone_state_dict(filename)
        own = self.encoder.state_dict()
        missing = [k for k in own if k not in sd]
        unexpected = [k for k in sd if k not in own]
        if self.strict and (missing or unexpected):
            raise KeyError(
                f'checkpoint {filename!r} does not match {type(self.encoder).__name__} '
                f'(prefix={self.prefix!r}): {len(missing)} missing keys (e.g. '
                f'{missing[:5]}), {len(unexpected)} unexpected keys (e.g. {unexpected[:5]}).'
                ' Check the backbone config (arch, depth, out_indices) and the prefix.')
        self.encoder.load_state_dict(sd, strict=self.strict)
        loaded = [v for k, v in sd.items() if k in own]
        return len(loaded), sum(v.numel() for v in loaded)

    # ------------------------------------------------------------------ forward
    def train(self, mode: bool = True):
        # frozen: this module and all below stay in eval mode. (Calls nn.Module.train
        # directly per module: MMPretrain's ViT.train returns None, no chaining.)
        mode = bool(mode) and not self.frozen
        self.training = mode
        for module in self.children():
            module.train(mode)
        return self

    def _maps(self, out) -> List[torch.Tensor]:
        maps = list(out) if isinstance(out, (tuple, list)) else [out]
        for m in maps:
            if m.dim() != 4:
                raise ValueError(f'{type(self.encoder).__name__} returned a '
                                 f'{tuple(m.shape)} tensor, not a (B, C, h, w) map (for a '
                                 "ViT set out_type='featmap')")
        return maps

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        maps = self._maps(self.encoder(x))
        if len(maps) == 1:
            return maps[0]
        if self.fuse is None:
            raise ValueError(f'{len(maps)} maps and fuse=None: select one stage')
        size = max((m.shape[-2:] for m in maps), key=lambda s: s[0] * s[1])
        return torch.cat([m if m.shape[-2:] == size else
                          F.interpolate(m, size=size, mode='bilinear', align_corners=False)
                          for m in maps], dim=1)

    def forward(self, x: torch.Tensor) -> Union[torch.Tensor, Tuple[torch.Tensor, ...]]:
        forward = self._forward_tuple if self.fuse == 'tuple' else self._forward
        if self.frozen:
            with torch.no_grad():
                out = forward(x)
        else:
            out = forward(x)
        return (out, ) if self.tuple_out and self.fuse != 'tuple' else out

    def _forward_tuple(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        return tuple(self._maps(self.encoder(x)))
