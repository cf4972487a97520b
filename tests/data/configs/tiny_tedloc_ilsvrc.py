# tools/reproduce_paper.py --dataset ilsvrc --config THIS on a tiny ILSVRC-layout data set
# (tests/test_workflow/test_reproduce_tiny.py): the tiny TeD-Loc of tiny_tedloc_train.py
# on a tiny EVA-01 (the paper's encoder kind), ILSVRCWSOLDataset on the train split, anchors
# from a small open_clip text tower (width 256). The driver sets the paths.
_base_ = ['./tiny_tedloc_train.py']

anchor_text = dict(model='ViT-S-32-alt', templates='single')
model = dict(
    backbone=dict(variant='eva01', checkpoint='PLEASE_SET_encoder'),
    neck=dict(out_channels=256),
    head=dict(in_channels=256, num_classes=3))
data = dict(type='ILSVRCWSOLDataset', metadata_root='PLEASE_SET_metadata_root')
train_dataloader = dict(dataset=dict(data, split='train'))
val_dataloader = dict(dataset=data)
test_dataloader = dict(dataset=dict(data, split='test'))
val_evaluator = dict(type='WSOLMetric', cam_curve_interval=0.01)
test_evaluator = val_evaluator
train_cfg = dict(by_epoch=False, max_iters=6, val_interval=3)
default_hooks = dict(checkpoint=dict(interval=3, save_best='wsol/MaxBoxAcc'))
custom_hooks = [dict(type='LeanCheckpointHook')]
