# The stamp benchmark exported to MMSegmentation's layout by
# tools/dataset_converters/wsol_to_mmseg.py, loaded with MMSegmentation's own
# BaseSegDataset. Train: pseudo-masks of a localizer (the train split has no true
# masks); val / test: the true masks. Default paths: the demo's
# (tools/run_synthetic_pipeline.py --segmentation); another export:
#   --cfg-options train_dataloader.dataset.data_root=work_dirs/stamp_demo/seg/cam
#
# Label PNGs: 0 background, k + 1 the WSOL class k, 255 ignored (reduce_zero_label
# must stay False: 0 is a class). The classes and palette are those the export writes
# into its seg_meta.json; tedloc.CheckSegLabel refuses a label outside them.
dataset_type = 'mmseg.BaseSegDataset'
pseudo_root = 'work_dirs/stamp_demo/seg/tedloc'
gt_root = 'work_dirs/stamp_demo/seg/gt'
classes = ('background', 'bird', 'mammal', 'fish', 'fruit', 'flower', 'vehicle')
palette = [[0, 0, 0], [128, 0, 0], [0, 128, 0], [128, 128, 0], [0, 0, 128],
           [128, 0, 128], [0, 128, 128]]
num_seg_classes = len(classes)
crop_size = (224, 224)
metainfo = dict(classes=classes, palette=palette)
data_prefix = dict(img_path='img_dir', seg_map_path='ann_dir')

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='tedloc.CheckSegLabel', num_classes=num_seg_classes),
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
    dict(type='tedloc.CheckSegLabel', num_classes=num_seg_classes),
    dict(type='PackSegInputs'),
]
_dataset = dict(type=dataset_type, metainfo=metainfo, data_prefix=data_prefix,
                img_suffix='.jpg', seg_map_suffix='.png', reduce_zero_label=False)
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
val_evaluator = [dict(type='mmseg.IoUMetric', iou_metrics=['mIoU']), dict(type='tedloc.FGIoUMetric')]
test_evaluator = val_evaluator
