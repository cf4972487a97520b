# A seconds-fast TeD-Loc training run through the Runner (tests/test_engine/test_tedloc_training.py):
# the tiny model of tiny_tedloc.py (64 px, random frozen EVA-02 from a file) trained from a
# CAM store (LoadCAM -> PseudoLabelSampler -> losses -> SGD), validated with save_best,
# saved as lean checkpoints. Tests set data_root, the CAM store, the anchor file and the
# backbone file.
_base_ = ['./tiny_tedloc.py']

cam_store = 'PLEASE_SET_cam_store'
train_pipeline = [
    dict(type='LoadWSOLImage'),
    dict(type='LoadCAM'),  # the dataset's cam_store
    dict(type='WSOLResize', scale=({{_base_.img_size}}, {{_base_.img_size}})),
    dict(type='WSOLRandomFlip', prob=0.5, direction='horizontal'),
    # the decoder's grid: a 16 x 16 grid
    dict(type='PseudoLabelSampler', grid_stride={{_base_.pseudo_label_stride}},
         num_fg_candidates=0.5,
         num_bg_candidates=0.5, num_samples=16),
    dict(type='PackWSOLInputs'),
]
train_dataloader = dict(
    batch_size=4, num_workers=0,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    # the val split: the synthetic generator writes masks for val and test only, and
    # the test measures localization (PxAP too) on the images the model trained on
    dataset=dict(type='WSOLDataset', data_root={{_base_.data_root}}, split='val',
                 cam_store=cam_store, pipeline=train_pipeline))
optim_wrapper = dict(
    type='OptimWrapper',
    constructor='TrainableParamsOptimWrapperConstructor',
    optimizer=dict(type='SGD', lr=0.05, momentum=0.9))
param_scheduler = []
train_cfg = dict(by_epoch=False, max_iters=30, val_interval=15)
default_hooks = dict(
    logger=dict(interval=1),
    checkpoint=dict(by_epoch=False, interval=15, max_keep_ckpts=4,
                    save_best='wsol/PxAP', rule='greater'))
log_processor = dict(by_epoch=False)
custom_hooks = [dict(type='LeanCheckpointHook')]
