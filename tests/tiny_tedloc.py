"""A tiny TeDLoc (frozen tiny EVA, small decoder, K random anchors) and a batch of
random images with pseudo-label maps: shared by the model and engine tests."""
import torch
from mmpretrain.structures import DataSample

import tedloc_mm  # noqa: F401
from tedloc_mm.registry import MODELS

K, D = 5, 32


def tiny_model(**head_kw):
    torch.manual_seed(0)
    model = MODELS.build(dict(
        type='TeDLoc',
        backbone=dict(type='FrozenEVA', patch_size=8, img_size=64,
                      arch=dict(embed_dims=64, num_layers=2, num_heads=4,
                                feedforward_channels=128)),
        neck=dict(type='TeDLocDecoder', in_channels=64, out_channels=D, patch_size=8,
                  out_stride=4, hidden_channels=16),
        head=dict(type='PatchMILHead', num_classes=K, in_channels=D,
                  anchor_embeddings=torch.randn(K, D), **head_kw)))
    model.init_weights()
    return model


def batch(model, n=2, size=64):
    g = torch.Generator().manual_seed(1)
    samples = []
    hw = size // model.out_stride
    for i in range(n):
        ds = DataSample(metainfo=dict(img_shape=(size, size), img_id=f'im{i}'))
        ds.set_gt_label(i % K)
        plm = torch.full((hw, hw), -1, dtype=torch.long)
        plm[2:6, 2:6] = 1
        plm[-3:, -3:] = 0
        ds.pseudo_label_map = plm
        samples.append(ds)
    imgs = [torch.randint(0, 256, (3, size, size), generator=g).to(torch.uint8)
            for _ in range(n)]
    return model.data_preprocessor(dict(inputs=imgs, data_samples=samples), True)


def training_files(d) -> list:
    """Files for tests/data/configs/tiny_tedloc_train.py under folder ``d``: 12
    synthetic 64 px images (3 classes, masks), a CAM store (each image's blurred mask),
    random anchors and the random backbone's file. Returns the ``--cfg-options`` that
    point the config at them (the test split is the val split)."""
    import os.path as osp

    import cv2
    import numpy as np
    from mmengine.config import Config
    from mmengine.registry import DefaultScope

    from tedloc_mm.embedded_benchmarks.gliders import generate_synthetic_wsol
    from tedloc_mm.fileio import save_anchor_file
    from tedloc_mm.fileio.cam_store import CAMStoreWriter
    from tedloc_mm.fileio.wsol_metadata import read_wsol_split
    config = osp.join(osp.dirname(osp.abspath(__file__)), 'data', 'configs',
                      'tiny_tedloc_train.py')
    d = str(d)
    data = osp.join(d, 'data')
    generate_synthetic_wsol(data, seed=5, num_classes=3, num_train=0, num_val=4, num_test=0,
                            image_size=64)
    cams = osp.join(d, 'cams')
    with CAMStoreWriter(cams, resolution=32) as writer:
        for info in read_wsol_split(osp.join(data, 'metadata', 'val')):
            mask = np.any([cv2.imread(osp.join(data, p), cv2.IMREAD_GRAYSCALE) > 0
                           for p in info['mask_paths']], 0).astype(np.float32)
            writer.write(info['img_id'], cv2.GaussianBlur(mask, (0, 0), 3))
    anchors = osp.join(d, 'anchors.pth')
    save_anchor_file(anchors, torch.randn(3, 32, generator=torch.Generator().manual_seed(0)),
                     ['a', 'b', 'c'], 'tiny', 'random-init', ['{}'])
    eva = osp.join(d, 'eva.pth')
    torch.manual_seed(1)
    with DefaultScope.overwrite_default_scope('tedloc'):
        torch.save(MODELS.build(Config.fromfile(config).model.backbone).vit.state_dict(), eva)
    options = [f'{loader}.dataset.data_root={data}'
               for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader')]
    return options + [f'train_dataloader.dataset.cam_store={cams}',
                      f'model.head.anchor_file={anchors}', f'model.backbone.checkpoint={eva}',
                      'test_dataloader.dataset.split=val']
