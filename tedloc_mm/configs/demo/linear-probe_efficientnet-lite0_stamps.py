# Stage 1 of the demo: the CAM classifier = EfficientNet-Lite0 with its packaged ImageNet
# weights (frozen) + a linear head fitted on the stamp benchmark's train split
# (tools/train_linear_probe.py: features once, then a logistic regression with the C
# fixed below, probe_c; the C grid is still fitted and reported). Its Grad-CAM gives TeD-Loc's pseudo-labels and is the CAM baseline
# (gradcam_efficientnet-lite0_stamps.py).
_base_ = [
    '../_base_/datasets/stamp_wsol.py',
    '../_base_/default_runtime.py',
]
num_classes = 6

model = dict(
    type='mmpretrain.ImageClassifier',
    # the packaged weights' preprocessing: RGB, x / 127.5 - 1
    data_preprocessor=dict(type='ClsDataPreprocessor', num_classes=num_classes,
                           mean=[127.5] * 3, std=[127.5] * 3, to_rgb=True),
    # 'tedloc.': mmpretrain.apis.init_model (tools/generate_cams.py) builds in MMPretrain's scope
    backbone=dict(type='tedloc.EfficientNetLite', arch='lite0', out_indices=(8, )),  # 1280 ch, /32
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=num_classes, in_channels=1280))
# read by tools/train_linear_probe.py
backbone_checkpoint = 'packaged'
probe_c_grid = (0.001, 0.01, 0.1, 1.0)
# C fixed, not picked on val per run: the grid's val accuracies lie one or two val images
# apart, and which wins moved with float noise (C = 1.0 on one machine, 0.01 on another,
# same images). Chosen once on val of the demo's benchmark (seed 0; tools/train_linear_probe.py
# with probe_c = None): val Top-1 85.48 / 85.95 / 85.24 / 85.71 for C = 0.001 / 0.01 / 0.1 /
# 1.0 (360 train, 420 val images); another machine gave the same four values. The grid is
# still fitted and reported in linear_probe.json (val_acc_per_C), but chooses nothing.
probe_c = 0.01

train_dataloader = dict(batch_size=32, dataset=dict(pipeline={{_base_.classifier_train_pipeline}}))
val_evaluator = dict(type='mmpretrain.Accuracy', topk=(1, ))
test_evaluator = val_evaluator
