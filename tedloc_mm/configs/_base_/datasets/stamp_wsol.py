# The generated stamp WSOL benchmark (tools/generate_stamp_benchmark.py): Tux Paint's
# photographic cut-outs on wallpaper photographs, 224 px, 6 classes.
#
# Default paths are those of the demo pipeline (tools/run_synthetic_pipeline.py writes
# everything under work_dirs/stamp_demo/). Another location: re-state the dataloaders'
# dataset fields or pass e.g. --cfg-options train_dataloader.dataset.data_root=...
dataset_type = 'WSOLDataset'
data_root = 'work_dirs/stamp_demo/data'
cam_store = 'work_dirs/stamp_demo/cams/train'
# the pseudo-label sampler's grid (input pixels per cell); TeD-Loc configs on this data
# give their decoder the same out_stride: model.neck.out_stride set from _base_.pseudo_label_stride
pseudo_label_stride = 8
img_size = 224

# stage 1 (the linear probe) reads its features once, without augmentation
classifier_train_pipeline = [
    dict(type='LoadWSOLImage'),
    dict(type='WSOLResize', scale=(img_size, img_size)),
    dict(type='PackWSOLInputs'),
]
train_pipeline = [
    dict(type='LoadWSOLImage'),
    dict(type='LoadCAM'),  # from the dataset's cam_store
    dict(type='WSOLRandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PseudoLabelSampler', grid_stride=pseudo_label_stride,
         num_fg_candidates=0.5, num_bg_candidates=0.5, num_samples=32),
    dict(type='PackWSOLInputs'),
]
test_pipeline = [
    dict(type='LoadWSOLImage'),
    dict(type='LoadWSOLAnnotations'),  # masks of val / test: PxAP applies
    dict(type='WSOLResize', scale=(img_size, img_size)),
    dict(type='PackWSOLInputs'),
]

train_dataloader = dict(
    batch_size=16,
    num_workers=0,  # 2-core CPU: worker processes cost more than they save here
    # iteration-based schedules: InfiniteSampler (DefaultSampler would make MMEngine's
    # iter loop sleep 2 s at every dataloader restart)
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(type=dataset_type, data_root=data_root, split='train',
                 cam_store=cam_store, pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=32,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root, split='val',
                 pipeline=test_pipeline, test_mode=True))
test_dataloader = dict(
    batch_size=32,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root, split='test',
                 pipeline=test_pipeline, test_mode=True))
val_evaluator = dict(type='WSOLMetric')
test_evaluator = val_evaluator
