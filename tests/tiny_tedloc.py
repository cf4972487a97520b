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
