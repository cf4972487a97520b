"""WSOL datasets (wsolevaluation metadata format) and their transforms. The file formats
they read are in :mod:`tedloc_mm.fileio`; the generated demo data sets in
:mod:`tedloc_mm.embedded_benchmarks`."""
from .transforms import *  # noqa: F401,F403
from .transforms import __all__ as _transforms
from .wsol_dataset import (CUBWSOLDataset, ILSVRCWSOLDataset, OpenImagesWSOLDataset,
                           WSOLDataset)

__all__ = ['WSOLDataset', 'CUBWSOLDataset', 'ILSVRCWSOLDataset', 'OpenImagesWSOLDataset',
           *_transforms]
