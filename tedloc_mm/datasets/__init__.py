"""WSOL datasets (wsolevaluation metadata format) and their transforms."""
from .image_io import ImageReadError, MissingImageError, decode_image, read_image  # noqa: F401
from .transforms import *  # noqa: F401,F403
from .wsol_dataset import (CUBWSOLDataset, ILSVRCWSOLDataset, OpenImagesWSOLDataset,
                           WSOLDataset)
from .wsol_metadata import WSOLMetadataError, read_class_names, read_wsol_split

# the synthetic benchmark generator registers itself here:
from .synthetic_wsol import SyntheticWSOLConfig, generate_synthetic_wsol  # noqa: F401
