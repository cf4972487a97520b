# The stamp benchmark exported to MMSegmentation's layout by
# tools/dataset_converters/wsol_to_mmseg.py, loaded with tedloc.SegExportDataset
# (MMSegmentation's BaseSegDataset reading the export's seg_meta.json: classes, palette,
# image suffix, folders). Train: pseudo-masks of a localizer (the train split has no true
# masks); val / test: the true masks. Default paths: the demo's
# (tools/run_synthetic_pipeline.py --segmentation); another export:
#   --cfg-options train_dataloader.dataset.data_root=work_dirs/stamp_demo/seg/cam
#
# Label PNGs: 0 background, k + 1 the WSOL class k, 255 ignored. tedloc.CheckSegLabel
# refuses a label outside the export's classes (their number comes with each sample).
dataset_type = 'tedloc.SegExportDataset'
pseudo_root = 'work_dirs/stamp_demo/seg/tedloc'
gt_root = 'work_dirs/stamp_demo/seg/gt'
# background + the 6 stamp classes: the decode head's num_classes (another export:
# --cfg-options model.decode_head.num_classes=K)
num_seg_classes = 7
crop_size = (224, 224)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='tedloc.CheckSegLabel'),
    dict(type='RandomResize', scale=crop_size, ratio_range=(0.75, 1.5), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=crop_size, keep_ratio=False),
    # after Resize, as in MMSegmentation's configs: scored at the original size
    dict(type='LoadAnnotations'),
    dict(type='tedloc.CheckSegLabel'),
    dict(type='PackSegInputs'),
]
_dataset = dict(type=dataset_type)
train_dataloader = dict(
    batch_size=16,
    num_workers=0,  # 2-core CPU
    # stated, not left to the tool: MMPretrain's tools/train.py / test.py force
    # persistent_workers=True (an error with num_workers=0), pin_memory and their collate_fn
    persistent_workers=False, pin_memory=False, collate_fn=dict(type='pseudo_collate'),
    # iteration-based: InfiniteSampler (DefaultSampler sleeps 2 s at each restart)
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(**_dataset, data_root=pseudo_root, ann_file='splits/train.txt',
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=16,
    num_workers=0,
    persistent_workers=False, pin_memory=False, collate_fn=dict(type='pseudo_collate'),
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(**_dataset, data_root=gt_root, ann_file='splits/val.txt',
                 pipeline=test_pipeline, test_mode=True))
test_dataloader = dict(
    batch_size=16,
    num_workers=0,
    persistent_workers=False, pin_memory=False, collate_fn=dict(type='pseudo_collate'),
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(**_dataset, data_root=gt_root, ann_file='splits/test.txt',
                 pipeline=test_pipeline, test_mode=True))
# MMSegmentation's IoUMetric (mIoU over background + classes) and the class-agnostic
# foreground IoU (the mask's extent whatever class it names)
val_evaluator = [dict(type='mmseg.IoUMetric', iou_metrics=['mIoU']),
                 dict(type='tedloc.FGIoUMetric')]
test_evaluator = val_evaluator
