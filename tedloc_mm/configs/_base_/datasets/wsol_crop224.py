# The wsolevaluation recipe (Choe et al., CVPR 2020) for real WSOL data sets, shared by
# cub_wsol.py and ilsvrc_wsol.py, which set the dataset type, paths and batch.
img_size = 224
# the pseudo-label sampler's grid: one cell per 4 x 4 input pixels (56 x 56 at 224 px).
# The TeD-Loc configs give their decoder the same out_stride (the paper's grid), from
# this one value: model.neck.out_stride set from _base_.pseudo_label_stride.
pseudo_label_stride = 4

train_pipeline = [
    dict(type='LoadWSOLImage'),  # BGR; data_preprocessor converts to RGB
    dict(type='LoadCAM'),  # from the dataset's cam_store
    # resize to 256 x 256, random 224 crop, horizontal flip; each moves image, CAM and
    # boxes together
    dict(type='WSOLResize', scale=(256, 256)),
    dict(type='WSOLRandomCrop', crop_size=img_size),
    dict(type='WSOLRandomFlip', prob=0.5, direction='horizontal'),
    # Appendix A: Otsu on the CAM (resized to the sampling grid with area interpolation),
    # top-n+ / bottom-n- candidates, a fresh balanced draw per call
    dict(type='PseudoLabelSampler', grid_stride=pseudo_label_stride, num_fg_candidates=0.5,
         num_bg_candidates=0.5, num_samples=16),
    dict(type='PackWSOLInputs'),
]
test_pipeline = [
    dict(type='LoadWSOLImage'),
    dict(type='LoadWSOLAnnotations'),  # checks image size; masks when the split has any
    dict(type='WSOLResize', scale=(img_size, img_size)),
    dict(type='PackWSOLInputs'),
]

train_dataloader = dict(
    batch_size=16,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),  # epoch-based schedule
    dataset=dict(type='WSOLDataset', split='train', pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=16,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='WSOLDataset', split='val', pipeline=test_pipeline, test_mode=True))
test_dataloader = dict(
    batch_size=16,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='WSOLDataset', split='test', pipeline=test_pipeline, test_mode=True))
# Paper §4.1: "Generated localization maps were evaluated at a resolution of 256x256
# pixels": every map (224 px here) is resized bicubically to 256 x 256 and the GT boxes
# are rescaled from the original image to 256 x 256 (int truncation). The map's own
# size instead: --cfg-options test_evaluator.eval_size=224 (val_evaluator for the
# checkpoint selection during training).
val_evaluator = dict(type='WSOLMetric', eval_size=256)
test_evaluator = val_evaluator
