from .efficientnet_lite import (LITE_PREPROCESSOR, EfficientNetLite,
                                convert_efficientnet_lite_checkpoint, packaged_checkpoint)
from .eva import FrozenEVA
from .frozen_backbone import FrozenBackbone

__all__ = ['FrozenBackbone', 'FrozenEVA', 'EfficientNetLite', 'LITE_PREPROCESSOR',
           'convert_efficientnet_lite_checkpoint', 'packaged_checkpoint']
