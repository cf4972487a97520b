"""Pseudo-label CAMs: the on-disk CAM store and the CAM generators."""
from .cam_store import CAMStore, CAMStoreWriter, open_cam_store, quantize_cam

__all__ = ['CAMStore', 'CAMStoreWriter', 'open_cam_store', 'quantize_cam']
