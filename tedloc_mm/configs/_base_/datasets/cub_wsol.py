# CUB-200-2011 in the WSOL metadata format (Choe et al., CVPR 2020); the pipelines and
# evaluation are those of wsol_crop224.py.
#
# Prepare (docs/en/data_preparation.md):
#   python tools/dataset_converters/cub.py data/CUB_200_2011 --out data/CUB_200_2011/metadata
#   (val: the CUBV2 metadata of wsolevaluation, or --val-per-class 5)
#   python tools/generate_cams.py clip-es --model ViT-B-16 --checkpoint <local file> \
#       --data-root data/CUB_200_2011/images --metadata-root data/CUB_200_2011/metadata \
#       --split train --out data/CUB_200_2011/cams/clip_es_vit-b-16
#
# Paths: override them in your config by re-stating the dataloaders' dataset fields, or
# on the command line, e.g. --cfg-options train_dataloader.dataset.data_root=/data/CUB
# (MMEngine does not re-evaluate these variables in inheriting configs).
_base_ = ['./wsol_crop224.py']

dataset_type = 'tedloc.CUBWSOLDataset'
data_root = 'data/CUB_200_2011/images'
metadata_root = 'data/CUB_200_2011/metadata'
cam_store = 'data/CUB_200_2011/cams/clip_es_vit-b-16'

train_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root,
                                     metadata_root=metadata_root, cam_store=cam_store))
val_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root,
                                   metadata_root=metadata_root))
test_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root,
                                    metadata_root=metadata_root))
