# A seconds-fast MMPretrain classifier on a folder dataset, for the tool tests
# (train / test / dist_test / resume). Tests set data_root with --cfg-options.
_base_ = ['../../../configs/_base_/default_runtime.py']

data_root = 'PLEASE_SET_data_root'
model = dict(
    type='mmpretrain.ImageClassifier',
    backbone=dict(
        type='ViTEVA02',
        arch=dict(embed_dims=32, num_layers=1, num_heads=2, feedforward_channels=64),
        img_size=32, patch_size=8, out_type='avg_featmap', final_norm=False),
    neck=None,
    head=dict(type='LinearClsHead', num_classes=3, in_channels=32,
              loss=dict(type='CrossEntropyLoss')),
    data_preprocessor=dict(type='ClsDataPreprocessor', num_classes=3,
                           mean=[127.5] * 3, std=[127.5] * 3, to_rgb=True),
)
pipeline = [
    dict(type='LoadWSOLImage'),
    dict(type='Resize', scale=(32, 32)),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=4, num_workers=0,
    persistent_workers=False, pin_memory=False, collate_fn=dict(type='pseudo_collate'),
    dataset=dict(type='mmpretrain.CustomDataset', data_root=data_root, data_prefix='train',
                 pipeline=pipeline),
    sampler=dict(type='InfiniteSampler', shuffle=True))
test_dataloader = dict(
    batch_size=3, num_workers=0,
    persistent_workers=False, pin_memory=False, collate_fn=dict(type='pseudo_collate'),
    dataset=dict(type='mmpretrain.CustomDataset', data_root=data_root, data_prefix='test',
                 pipeline=pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False))
test_evaluator = dict(type='mmpretrain.Accuracy', topk=(1, 2))
val_dataloader = test_dataloader
val_evaluator = test_evaluator

optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.05, momentum=0.9))
param_scheduler = [dict(type='MultiStepLR', by_epoch=False, milestones=[3], gamma=0.1)]
train_cfg = dict(by_epoch=False, max_iters=6, val_interval=100)
val_cfg = dict()
test_cfg = dict()
default_hooks = dict(
    logger=dict(interval=1),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=2, max_keep_ckpts=10))

# iteration-based: log iterations, not epochs
log_processor = dict(by_epoch=False)
