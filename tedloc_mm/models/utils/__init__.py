from .eva_checkpoint import convert_eva_state_dict, load_eva_weights
from .orthogonalize import (ORTHOGONALIZATIONS, orthogonalize_anchors, qr_orthogonalize,
                            svd_orthogonalize)

__all__ = ['convert_eva_state_dict', 'load_eva_weights',
           'ORTHOGONALIZATIONS',
           'orthogonalize_anchors', 'qr_orthogonalize', 'svd_orthogonalize']
