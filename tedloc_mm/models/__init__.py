"""TeD-Loc models: frozen EVA encoder, decoder, PatchMILHead, the TeDLoc localizer."""
from . import backbones, heads, localizers, necks, utils  # noqa: F401
from .backbones import FrozenEVA
from .heads import PatchMILHead
from .localizers import GradCAMLocalizer, TeDLoc
from .necks import TeDLocDecoder

__all__ = ['FrozenEVA', 'TeDLocDecoder', 'PatchMILHead', 'TeDLoc', 'GradCAMLocalizer']
