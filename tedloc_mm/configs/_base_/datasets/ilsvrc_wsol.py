# ILSVRC 2012 in the WSOL metadata format (Choe et al., CVPR 2020); the pipelines and
# evaluation are those of wsol_crop224.py.
#
# Prepare (docs/en/data_preparation.md): the ILSVRC metadata of wsolevaluation
# (metadata/ILSVRC/{train,val,test}: test = the original 50k validation images,
# val = ImageNetV2 "ILSVRC-V2"), a class_names.txt (1000 lines in label order), and
#   python tools/generate_cams.py clip-es --model ViT-B-16 --checkpoint <local file> \
#       --data-root data/ILSVRC --metadata-root data/ILSVRC/metadata --split train \
#       --out data/ILSVRC/cams/clip_es_vit-b-16 --batch-size 64 --device cuda
#   (run it on several GPUs with torchrun or --shard i/n; it resumes where it stopped)
#
# Paths: override by re-stating the dataloaders' dataset fields or with --cfg-options
# (MMEngine does not re-evaluate these variables in inheriting configs).
_base_ = ['./wsol_crop224.py']

dataset_type = 'tedloc.ILSVRCWSOLDataset'
data_root = 'data/ILSVRC'
metadata_root = 'data/ILSVRC/metadata'
cam_store = 'data/ILSVRC/cams/clip_es_vit-b-16'

train_dataloader = dict(
    batch_size=32,  # the paper's ILSVRC batch
    num_workers=8,
    # check_images=False: no 1.28 M stat calls per process at start-up; a missing
    # image then fails when loaded, naming its file
    dataset=dict(type=dataset_type, data_root=data_root, metadata_root=metadata_root,
                 cam_store=cam_store, check_images=False))
val_dataloader = dict(batch_size=32, num_workers=8,
                      dataset=dict(type=dataset_type, data_root=data_root,
                                   metadata_root=metadata_root))
test_dataloader = dict(batch_size=32, num_workers=8,
                       dataset=dict(type=dataset_type, data_root=data_root,
                                    metadata_root=metadata_root))
