"""TeD-Loc models: frozen encoders, decoder, PatchMILHead, the TeDLoc localizer."""
from . import backbones, heads, localizers, necks, utils  # noqa: F401
from .backbones import EfficientNetLite, FrozenBackbone, FrozenEVA
from .heads import PatchMILHead
from .localizers import GradCAMLocalizer, TeDLoc
from .necks import TeDLocDecoder

__all__ = ['FrozenBackbone', 'FrozenEVA', 'EfficientNetLite', 'TeDLocDecoder',
           'PatchMILHead', 'TeDLoc', 'GradCAMLocalizer']
