# A segmenter trained on pseudo-masks of the demo's localizers, in MMSegmentation's
# own terms (its runtime, default_scope='mmseg', EncoderDecoder, FCNHead,
# BaseSegDataset, IoUMetric); the tedloc parts are the frozen encoder, the label
# check and FG-IoU. Train on TeD-Loc's pseudo-masks, test on the true masks:
#   python tools/train.py configs/demo/fcn_frozen-efficientnet-lite0_stamps-seg.py \
#       --work-dir work_dirs/stamp_demo/segmenter_tedloc
#   python tools/test.py configs/demo/fcn_frozen-efficientnet-lite0_stamps-seg.py \
#       work_dirs/stamp_demo/segmenter_tedloc/iter_200.pth
# (the exports: tools/run_synthetic_pipeline.py --segmentation, docs/en/segmentation.md)
_base_ = [
    'mmseg::_base_/default_runtime.py',
    '../_base_/models/fcn_frozen-efficientnet-lite0.py',
    '../_base_/datasets/stamp_seg.py',
]
custom_imports = dict(imports=['tedloc_mm'], allow_failed_imports=False)
model = dict(decode_head=dict(num_classes={{_base_.num_seg_classes}}))

# 200 iterations of 16 (~9 epochs of 360 images): FG-IoU on val is flat from ~100,
# mIoU still gains ~1 point per 50 iterations near the end
max_iters = 200
optim_wrapper = dict(type='OptimWrapper',
                     optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=5e-4))
param_scheduler = [dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=0, end=max_iters,
                        by_epoch=False)]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=50)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=10, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=50, max_keep_ckpts=1,
                    save_best='mIoU', rule='greater'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='mmseg.SegVisualizationHook'))
randomness = dict(seed=0)
