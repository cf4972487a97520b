from .gradcam_localizer import GradCAMLocalizer
from .tedloc import TeDLoc

__all__ = ['GradCAMLocalizer', 'TeDLoc']
