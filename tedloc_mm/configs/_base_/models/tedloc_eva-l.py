# TeD-Loc with a frozen EVA-02-L/14 encoder at 224 px (paper §3, "ViT-EVA-L").
#
# Files this needs (nothing is downloaded):
#   * model.backbone.checkpoint: EVA-02-L weights in MMPretrain's layout; convert an
#     original EVA / timm file with tools/model_converters/eva_to_mmpretrain.py.
#     (None = random weights: only for smoke tests.)
#   * model.head.anchor_file: class anchors from tools/build_text_anchors.py; its width
#     d sets D = model.neck.out_channels = model.head.in_channels.
#
# The decoder's output stride (4: a 224 px input gives a 56 x 56 map) is also the
# pseudo-label sampler's: the tools give it to the sampler (one source).
decoder_out_stride = 4
anchor_dim = 768  # d of the text model of the anchor file (open_clip ViT-L-14: 768)

model = dict(
    type='TeDLoc',
    data_preprocessor=dict(
        type='ClsDataPreprocessor',
        # CLIP normalisation, RGB (EVA-02 was trained with it)
        mean=[0.48145466 * 255, 0.4578275 * 255, 0.40821073 * 255],
        std=[0.26862954 * 255, 0.26130258 * 255, 0.27577711 * 255],
        to_rgb=True),
    backbone=dict(
        type='FrozenEVA',
        variant='eva02',  # 'eva01' for EVA-01-L (BEiTViT)
        arch='l',
        img_size=224,
        patch_size=14,
        checkpoint='checkpoints/eva02-l-p14_mmpretrain.pth',
        frozen=True),
    neck=dict(
        type='TeDLocDecoder',
        in_channels=1024,
        out_channels=anchor_dim,
        patch_size=14,
        out_stride=decoder_out_stride,
        hidden_channels=256),
    head=dict(
        type='PatchMILHead',
        num_classes=200,
        in_channels=anchor_dim,
        anchor_file='anchors/cub_vit-l-14.pth',
        orthogonalization='qr',  # 'svd' (our extension) | 'none' (paper Table 5 ablation)
        logit_scale=1.0,         # f(v, t) = s <v, t>, v not normalised (paper's f)
        normalize_embeddings=False,
        lambda_kd=1.0,
        lambda_patch=1.0,
        lambda_img=1.0,
        map_type='fg',           # 'anchor': <z_p, t_c>, the paper's Table 4 map
        anchor_map_label='pred'))
