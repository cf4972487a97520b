# Stage 4 of the demo: TeD-Loc on the synthetic benchmark, with the stage-1 classifier's
# backbone frozen, CAM pseudo-labels from its Grad-CAM (stage 2) and anchors from a
# random-initialised open_clip text tower (stage 3: no CLIP weights offline).
_base_ = [
    '../_base_/datasets/synthetic_wsol.py',
    '../_base_/default_runtime.py',
]
work_root = 'work_dirs/synthetic_demo'
anchor_dim = 512  # text width of the random-initialised open_clip ViT-B-32 of stage 3
num_classes = 8

model = dict(
    type='TeDLoc',
    backbone=dict(
        type='FrozenEVA', variant='eva02',
        arch=dict(embed_dims=96, num_layers=4, num_heads=4, feedforward_channels=256),
        img_size=96, patch_size=8, final_norm=True,  # as the stage-1 classifier
        # the classifier checkpoint: its `backbone.` weights are loaded
        checkpoint=f'{work_root}/classifier/iter_1500.pth'),
    neck=dict(type='TeDLocDecoder', in_channels=96, out_channels=anchor_dim, patch_size=8,
              out_stride=4, hidden_channels=64),
    head=dict(type='PatchMILHead', num_classes=num_classes, in_channels=anchor_dim,
              anchor_file=f'{work_root}/anchors.pth', orthogonalization='qr',
              lambda_kd=1.0, lambda_patch=1.0, lambda_img=1.0, map_type='fg'))

optim_wrapper = dict(
    type='OptimWrapper',
    constructor='TrainableParamsOptimWrapperConstructor',
    optimizer=dict(type='SGD', lr=0.05, momentum=0.9, weight_decay=1e-4))
param_scheduler = []
train_cfg = dict(by_epoch=False, max_iters=600, val_interval=150)
val_cfg = dict()
test_cfg = dict()
default_hooks = dict(
    logger=dict(interval=50),
    # keep the checkpoint with the best localization on val, as the paper selects
    checkpoint=dict(by_epoch=False, interval=150, max_keep_ckpts=1,
                    save_best='wsol/MaxBoxAccV2', rule='greater'))

# iteration-based: log iterations, not epochs
log_processor = dict(by_epoch=False)

# overlays (map, GT boxes green, predicted box red) of the first images of each
# validation and test run, at the CAM threshold that evaluation chose
custom_hooks = [dict(type='WSOLVisualizationHook', num_images=8, enable_val=False)]
