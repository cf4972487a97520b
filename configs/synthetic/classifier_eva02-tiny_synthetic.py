# Stage 1 of the demo: a tiny EVA-02 image classifier (MMPretrain ImageClassifier) on the
# synthetic benchmark. Its Grad-CAM gives TeD-Loc's pseudo-labels, and its backbone is
# TeD-Loc's frozen encoder -- as a pre-trained EVA classifier is in the paper.
_base_ = [
    '../_base_/datasets/synthetic_wsol.py',
    '../_base_/default_runtime.py',
]

# 96 px, patch 8: a 12 x 12 token grid
eva_tiny = dict(embed_dims=96, num_layers=4, num_heads=4, feedforward_channels=256)
num_classes = 8

model = dict(
    type='ImageClassifier',
    data_preprocessor=dict(
        type='ClsDataPreprocessor', num_classes=num_classes,
        mean=[0.48145466 * 255, 0.4578275 * 255, 0.40821073 * 255],
        std=[0.26862954 * 255, 0.26130258 * 255, 0.27577711 * 255], to_rgb=True),
    backbone=dict(
        type='ViTEVA02', arch=eva_tiny, img_size=96, patch_size=8,
        # EVA-02 settings (as FrozenEVA builds them) plus a final norm; the class token
        # feeds the head, like a pre-trained EVA classifier
        sub_ln=True, final_norm=True, out_type='cls_token',
        norm_cfg=dict(type='LN', eps=1e-6)),
    neck=None,
    head=dict(type='LinearClsHead', num_classes=num_classes, in_channels=96,
              loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1)))

train_dataloader = dict(dataset=dict(pipeline={{_base_.classifier_train_pipeline}}))
# validate classification only (the WSOL metric needs maps; the classifier gives none)
val_evaluator = dict(type='Accuracy', topk=(1, 5))
test_evaluator = val_evaluator

optim_wrapper = dict(optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05),
                     clip_grad=dict(max_norm=5.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=100),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=100, end=1500, eta_min=1e-5),
]
train_cfg = dict(by_epoch=False, max_iters=1500, val_interval=500)
val_cfg = dict()
test_cfg = dict()
default_hooks = dict(
    logger=dict(interval=100),
    checkpoint=dict(by_epoch=False, interval=500, max_keep_ckpts=1))

# iteration-based: log iterations, not epochs
log_processor = dict(by_epoch=False)
