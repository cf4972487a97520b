from .tedloc import TeDLoc

__all__ = ['TeDLoc']
