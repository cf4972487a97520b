# Stage 2 of the demo: TeD-Loc on the frozen EfficientNet-Lite0 (packaged ImageNet
# weights), pseudo-labels from the stage-1 linear probe's Grad-CAM, anchors from a
# random-initialised open_clip text tower (no CLIP weights offline).
_base_ = [
    '../_base_/models/tedloc_efficientnet-lite0.py',
    '../_base_/datasets/stamp_wsol.py',
    '../_base_/default_runtime.py',
]
work_root = 'work_dirs/stamp_demo'
anchor_dim = 512  # text width of the random-initialised open_clip ViT-B-32
num_classes = 6
max_iters = 100  # about 4.4 epochs of the 360 train images at batch 16
val_interval = 25
# the best-MaxBoxAccV2 checkpoint is picked among the validations of the second half of
# the schedule (iterations 50, 75, 100): in the first half the map's localization can
# peak while its classification is still learning (docs/en/demo_trials.md, T14)
val_begin = max_iters // 2

model = dict(
    # the frozen encoder: EfficientNet-Lite0, packaged ImageNet weights; stages 5 (112
    # channels, stride 16) and 8 (1280, stride 32, the map the classifier pools) resized
    # to 14 x 14 and concatenated: object extents at twice the CAM's resolution. The
    # decoder takes channels (1392) and stride (16) from it.
    # channels_last: the depthwise convolutions run faster in that layout on CPU (same
    # values to float rounding)
    backbone=dict(backbone=dict(out_indices=(5, 8), channels_last=True), fuse='concat'),
    # reduce_channels: a 1x1 conv 1392 -> 256 at 14 x 14 before the 3x3 stage at 28 x 28,
    # which at 1392 input channels costs as much as the encoder
    # (benchmarks/train_step_time.py); 256 classified better than 128 on val
    # out_stride: the pseudo-label sampler's grid of stamp_wsol.py (8: 28 x 28)
    neck=dict(out_channels=anchor_dim, out_stride={{_base_.pseudo_label_stride}},
              hidden_channels=128,
              reduce_channels=256),  # 28 x 28
    # lambda_img = 2 (Eq. 5): chosen on val (docs/en/demo_trials.md)
    head=dict(num_classes=num_classes, in_channels=anchor_dim,
              anchor_file=f'{work_root}/anchors.pth', lambda_img=2.0))

# the recipe chosen on val (docs/en/demo_trials.md): AdamW, cosine to 0 over the run
optim_wrapper = dict(
    type='OptimWrapper',
    constructor='TrainableParamsOptimWrapperConstructor',
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.01))
param_scheduler = [
    dict(type='CosineAnnealingLR', by_epoch=False, begin=0, end=max_iters, eta_min=0)]
train_cfg = dict(by_epoch=False, max_iters=max_iters, val_begin=val_begin,
                 val_interval=val_interval)
val_cfg = dict()
test_cfg = dict()
default_hooks = dict(
    logger=dict(interval=10),
    # keep the checkpoint with the best localization on val, as the paper selects
    checkpoint=dict(by_epoch=False, interval=val_interval, max_keep_ckpts=1,
                    save_best='wsol/MaxBoxAccV2', rule='greater'))
log_processor = dict(by_epoch=False)
custom_hooks = [
    dict(type='WSOLVisualizationHook', num_images=8, enable_val=False),
    # the encoder is frozen and the pipelines are fixed resizes and flips: its output is
    # computed once per image and flip (train) and once per val image, then reused
    dict(type='FrozenFeatureCacheHook')]
