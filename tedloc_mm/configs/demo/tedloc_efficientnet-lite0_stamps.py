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

model = dict(
    # the frozen encoder: EfficientNet-Lite0, packaged ImageNet weights; stages 5 (112
    # channels, stride 16) and 8 (1280, stride 32, the map the classifier pools) resized
    # to 14 x 14 and concatenated: object extents at twice the CAM's resolution. The
    # decoder takes channels (1392) and stride (16) from it.
    backbone=dict(backbone=dict(out_indices=(5, 8)), fuse='concat'),
    neck=dict(out_channels=anchor_dim, out_stride=8, hidden_channels=128),  # 28 x 28
    head=dict(num_classes=num_classes, in_channels=anchor_dim,
              anchor_file=f'{work_root}/anchors.pth'))

optim_wrapper = dict(
    type='OptimWrapper',
    constructor='TrainableParamsOptimWrapperConstructor',
    optimizer=dict(type='SGD', lr=0.05, momentum=0.9, weight_decay=1e-4))
param_scheduler = []
train_cfg = dict(by_epoch=False, max_iters=60, val_interval=30)
val_cfg = dict()
test_cfg = dict()
default_hooks = dict(
    logger=dict(interval=10),
    # keep the checkpoint with the best localization on val, as the paper selects
    checkpoint=dict(by_epoch=False, interval=30, max_keep_ckpts=1,
                    save_best='wsol/MaxBoxAccV2', rule='greater'))
log_processor = dict(by_epoch=False)
custom_hooks = [dict(type='WSOLVisualizationHook', num_images=8, enable_val=False)]
