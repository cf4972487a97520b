# CUB-200-2011 in the WSOL metadata format (Choe et al., CVPR 2020).
#
# Prepare (see README "Datasets"):
#   python tools/dataset_converters/cub.py data/CUB_200_2011 --out data/CUB_200_2011/metadata
#   (val: the CUBV2 metadata of wsolevaluation, or --val-per-class 5)
#   python tools/generate_cams.py clip-es --model ViT-B-16 --checkpoint <local file> \
#       --data-root data/CUB_200_2011/images --metadata-root data/CUB_200_2011/metadata \
#       --split train --out data/CUB_200_2011/cams/clip_es_vit-b-16
#
# Paths: override these in your config by re-stating the dataloaders' dataset fields, or
# on the command line, e.g.
#   --cfg-options train_dataloader.dataset.data_root=/data/CUB/images
# (MMEngine does not re-evaluate these variables in inheriting configs).
dataset_type = 'CUBWSOLDataset'
data_root = 'data/CUB_200_2011/images'
metadata_root = 'data/CUB_200_2011/metadata'
cam_store = 'data/CUB_200_2011/cams/clip_es_vit-b-16'
img_size = 224
# must equal model.neck.out_stride: pseudo_label_map is (img_size // stride)^2
pseudo_label_stride = 4

train_pipeline = [
    dict(type='LoadWSOLImage'),  # BGR; data_preprocessor converts to RGB
    dict(type='LoadCAM', cam_store=cam_store),
    # the wsolevaluation recipe: resize to 256 x 256, random 224 crop, horizontal flip;
    # each moves image, CAM and boxes together
    dict(type='WSOLResize', scale=(256, 256)),
    dict(type='WSOLRandomCrop', crop_size=img_size),
    dict(type='WSOLRandomFlip', prob=0.5, direction='horizontal'),
    # Appendix A: Otsu on the CAM (resized to the 56 x 56 output grid with area
    # interpolation), top-n+ / bottom-n- candidates, a fresh balanced draw per call
    dict(type='PseudoLabelSampler', out_stride=pseudo_label_stride,
         num_fg_candidates=0.5, num_bg_candidates=0.5, num_samples=16),
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
    dataset=dict(type=dataset_type, data_root=data_root, metadata_root=metadata_root,
                 split='train', pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=16,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root, metadata_root=metadata_root,
                 split='val', pipeline=test_pipeline, test_mode=True))
test_dataloader = dict(
    batch_size=16,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root, metadata_root=metadata_root,
                 split='test', pipeline=test_pipeline, test_mode=True))
# Paper §4.1: "Generated localization maps were evaluated at a resolution of 256x256
# pixels": every map (224 px here) is resized bicubically to 256 x 256 and the GT boxes
# are rescaled from the original image to 256 x 256 (int truncation). The map's own
# size instead: --cfg-options test_evaluator.eval_size=224 (val_evaluator for the
# checkpoint selection during training).
eval_size = 256
val_evaluator = dict(type='WSOLMetric', eval_size=eval_size)
test_evaluator = val_evaluator
