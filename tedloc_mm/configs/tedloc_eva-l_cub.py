# TeD-Loc, frozen EVA-02-L/14 at 224 px, CUB-200-2011 (paper: 50 epochs, batch 16, SGD).
_base_ = [
    './_base_/models/tedloc_eva-l.py',
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
    backbone=dict(checkpoint='checkpoints/eva02-l-p14_mmpretrain.pth'),
    neck=dict(out_channels=768),
    head=dict(num_classes=200, in_channels=768, anchor_file='anchors/cub_vit-l-14.pth',
              orthogonalization='qr'))

train_dataloader = dict(batch_size=16)

# WSOLMetric evaluates at 256 x 256 (paper §4.1; set in the _base_ dataset config);
# --cfg-options test_evaluator.eval_size=224 evaluates at the map's own 224 px.
# keep the checkpoint with the best localization on the validation split, as the
# paper selects its model (WSOLMetric's MaxBoxAccV2)
default_hooks = dict(checkpoint=dict(save_best='wsol/MaxBoxAccV2', rule='greater'))
