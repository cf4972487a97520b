# A seconds-fast TeD-Loc (tiny random EVA-02, 64 px input) for the inference, hook and
# complexity tests. Tests set the anchor file and the data paths themselves.
_base_ = ['../../../configs/_base_/default_runtime.py']

img_size = 64
num_classes = 3
anchor_dim = 32
pseudo_label_stride = 4  # the decoder's grid; tiny_tedloc_train.py samples on it
model = dict(
    type='TeDLoc',
    backbone=dict(type='FrozenEVA', variant='eva02', img_size=img_size, patch_size=8,
                  arch=dict(embed_dims=64, num_layers=2, num_heads=4,
                            feedforward_channels=128),
                  checkpoint=None, frozen=True),
    neck=dict(type='TeDLocDecoder', in_channels=64, out_channels=anchor_dim, patch_size=8,
              out_stride=pseudo_label_stride, hidden_channels=16),
    head=dict(type='PatchMILHead', num_classes=num_classes, in_channels=anchor_dim,
              anchor_file='PLEASE_SET_anchor_file', orthogonalization='qr'))

data_root = 'PLEASE_SET_data_root'
test_pipeline = [
    dict(type='LoadWSOLImage'),
    dict(type='LoadWSOLAnnotations'),
    dict(type='WSOLResize', scale=(img_size, img_size)),
    dict(type='PackWSOLInputs'),
]
val_dataloader = dict(
    batch_size=2, num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='WSOLDataset', data_root=data_root, split='val',
                 pipeline=test_pipeline, test_mode=True))
test_dataloader = val_dataloader
val_evaluator = dict(type='WSOLMetric')
test_evaluator = val_evaluator
val_cfg = dict()
test_cfg = dict()
custom_hooks = [dict(type='WSOLVisualizationHook', num_images=3)]
