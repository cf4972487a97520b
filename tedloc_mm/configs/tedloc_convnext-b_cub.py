# TeD-Loc, frozen ConvNeXt-B (MMPretrain ImageNet-1k) at 224 px, CUB-200-2011
# (the paper's schedule: 50 epochs, batch 16, SGD). Not in the paper: the paper's
# encoder is EVA-L (configs/tedloc_eva-l_cub.py); this swaps in a CNN encoder.
_base_ = [
    './_base_/models/tedloc_convnext-b.py',
    './_base_/datasets/cub_wsol.py',
    './_base_/schedules/sgd_50e_cub.py',
    './_base_/default_runtime.py',
]

# K = 200 <= d = 768 (open_clip ViT-L-14 text width): QR orthogonalisation is valid.
# Build the anchors with
#   python tools/build_text_anchors.py --classes cub --model ViT-L-14 \
#       --checkpoint <local open_clip ViT-L-14 file> --templates cub \
#       --out anchors/cub_vit-l-14.pth
model = dict(
    backbone=dict(
        checkpoint='checkpoints/convnext-base_32xb128_in1k_20221207-fbdb5eb9.pth'),
    neck=dict(out_channels=768, out_stride={{_base_.pseudo_label_stride}}),
    head=dict(num_classes=200, in_channels=768, anchor_file='anchors/cub_vit-l-14.pth',
              orthogonalization='qr'))

train_dataloader = dict(batch_size=16)

# keep the checkpoint with the best localization on the validation split
default_hooks = dict(checkpoint=dict(save_best='wsol/MaxBoxAccV2', rule='greater'))
