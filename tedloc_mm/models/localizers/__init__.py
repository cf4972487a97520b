from .clip_zero_shot import CLIPESLocalizer, CLIPPatchTextLocalizer
from .gradcam_localizer import GradCAMLocalizer
from .tedloc import TeDLoc

__all__ = ['CLIPESLocalizer', 'CLIPPatchTextLocalizer', 'GradCAMLocalizer', 'TeDLoc']
