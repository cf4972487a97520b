from .patch_mil_head import PatchMILHead

__all__ = ['PatchMILHead']
