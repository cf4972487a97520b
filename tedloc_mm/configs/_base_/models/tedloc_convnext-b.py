# TeD-Loc with a frozen ConvNeXt-B encoder (MMPretrain's ImageNet-1k classifier).
#
# Files this needs (nothing is downloaded):
#   * model.backbone.checkpoint: MMPretrain's ConvNeXt-B ImageNet-1k classifier
#     checkpoint, used as it is (a full classifier file: prefix 'backbone.' selects the
#     backbone weights, the linear head is dropped). Download it yourself from
#     https://download.openmmlab.com/mmclassification/v0/convnext/
#       convnext-base_32xb128_in1k_20221207-fbdb5eb9.pth  (the two lines joined)
#     (MMPretrain model zoo: convnext-base_32xb128_in1k, top-1 83.66) into checkpoints/.
#     (None = random weights: only for smoke tests.)
#   * model.head.anchor_file: class anchors from tools/build_text_anchors.py; its width
#     d sets D = model.neck.out_channels = model.head.in_channels.
#
# Encoder output: the last stage after its LayerNorm (norm3, as the classifier pools it),
# 1024 channels at stride 32: 7 x 7 at 224 px (EVA-L/14 gives 16 x 16). The decoder takes
# in_channels and in_stride from the backbone (TeDLoc fills them in) and upsamples 8x.
#
# The decoder's output stride (4: a 224 px input gives a 56 x 56 map); the configs that
# train set it to their data's pseudo_label_stride, the pseudo-label sampler's grid.
decoder_out_stride = 4
anchor_dim = 768  # d of the text model of the anchor file (open_clip ViT-L-14: 768)

model = dict(
    type='TeDLoc',
    # ImageNet normalisation, RGB (MMPretrain's ConvNeXt training)
    data_preprocessor=dict(
        type='ClsDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        to_rgb=True),
    backbone=dict(
        type='FrozenBackbone',
        backbone=dict(
            type='ConvNeXt',
            arch='base',
            out_indices=(3, ),
            # keep the map: normalise it rather than the pooled vector (same norm3)
            gap_before_final_norm=False),
        checkpoint='checkpoints/convnext-base_32xb128_in1k_20221207-fbdb5eb9.pth',
        prefix='backbone.',
        # ConvNeXt-B: known (stride 32, 1024 channels); no dry forward at build time
        out_stride=32,
        out_channels=1024,
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
