# TeD-Loc with a frozen EVA-01-L/14 encoder at 224 px. The paper: "a ViT (ViT-EVA-L)
# [28] ... pre-trained for classification and frozen" (§3); [28] is EVA (Fang et al.,
# CVPR 2023), i.e. EVA-01. EVA-02-L: configs/tedloc_eva02-l_{cub,ilsvrc}.py.
#
# Files this needs (nothing is downloaded):
#   * model.backbone.checkpoint: EVA-01-L fine-tuned for ImageNet-1k classification,
#     converted to 224 px by tools/model_converters/eva_to_mmpretrain.py from timm's
#     eva_large_patch14_196.in22k_ft_in22k_in1k (= BAAI's
#     eva_l_psz14_196px_21k_to_1k_ft_88p6.pt; its 14 x 14 position grid is resized to
#     16 x 16 as timm does). The 196 px release is the one whose trained resolution is
#     closest to the paper's 224 px (ours; the paper names no file). The 336 px release
#     (..._336.in22k_ft_in22k_in1k, 24 x 24 -> 16 x 16) converts the same way.
#     (None = random weights: only for smoke tests.)
#   * model.head.anchor_file: class anchors from tools/build_text_anchors.py; its width
#     d sets D = model.neck.out_channels = model.head.in_channels.
#
# The decoder's output stride (4: a 224 px input gives a 56 x 56 map); the configs that
# train set it to their data's pseudo_label_stride, the pseudo-label sampler's grid.
decoder_out_stride = 4
anchor_dim = 768  # d of the text model of the anchor file (open_clip ViT-L-14: 768)

model = dict(
    type='TeDLoc',
    data_preprocessor=dict(
        type='ClsDataPreprocessor',
        # CLIP normalisation, RGB (EVA-01-L's classification fine-tuning used it: timm's
        # pretrained cfg mean/std = OPENAI_CLIP_MEAN/STD)
        mean=[0.48145466 * 255, 0.4578275 * 255, 0.40821073 * 255],
        std=[0.26862954 * 255, 0.26130258 * 255, 0.27577711 * 255],
        to_rgb=True),
    backbone=dict(
        type='FrozenEVA',
        variant='eva01',  # MMPretrain BEiTViT with EVA-01's settings ('eva02': ViTEVA02)
        arch='l',
        img_size=224,
        patch_size=14,
        checkpoint='checkpoints/eva-l-p14-196-in21k-in1k_mmpretrain.pth',
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
