"""The dataset configs build and run end to end on a fabricated split with a CAM store."""
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import set_random_seed

from tedloc_mm.fileio.cam_store import CAMStoreWriter
from tedloc_mm.registry import DATASETS

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
IMAGES = [('c0/a.png', 0, (90, 70), (10, 15, 60, 55)), ('c1/b.png', 1, (64, 96), (5, 30, 50, 90))]


def fabricate(root):
    import os
    d = osp.join(root, 'metadata', 'train')
    os.makedirs(d)
    store = osp.join(root, 'cams')
    with CAMStoreWriter(store, 'p', 32) as w:
        for img_id, _, (wd, ht), (x0, y0, x1, y1) in IMAGES:
            os.makedirs(osp.dirname(osp.join(root, img_id)), exist_ok=True)
            img = np.full((ht, wd, 3), 50, np.uint8)
            img[y0:y1, x0:x1] = 200
            cv2.imwrite(osp.join(root, img_id), img)
            w.write(img_id, cv2.GaussianBlur((img[..., 0] > 100).astype(np.float32), (9, 9), 3))
    for name, fmt in (('image_ids', '{0}'), ('class_labels', '{0},{1}'),
                      ('image_sizes', '{0},{2[0]},{2[1]}'),
                      ('localization', '{0},{3[0]},{3[1]},{3[2]},{3[3]}')):
        with open(osp.join(d, name + '.txt'), 'w') as f:
            f.writelines(fmt.format(*i) + '\n' for i in IMAGES)
    with open(osp.join(root, 'metadata', 'class_names.txt'), 'w') as f:
        f.write('one\ntwo\n')
    return store


@pytest.mark.parametrize('cfg_name', ['cub_wsol.py', 'ilsvrc_wsol.py'])
def test_dataset_config_runs_end_to_end(tmp_path, cfg_name):
    set_random_seed(0)
    root = str(tmp_path)
    store = fabricate(root)
    cfg = Config.fromfile(osp.join(REPO, 'configs', '_base_', 'datasets', cfg_name))
    init_default_scope('tedloc')
    ds_cfg = cfg.train_dataloader.dataset
    ds_cfg.update(data_root=root, metadata_root=osp.join(root, 'metadata'), cam_store=store)
    # the sampler's grid is the paper models' decoder's (the config's pseudo_label_stride)
    assert ds_cfg.pipeline[-2]['grid_stride'] == cfg.pseudo_label_stride == 4
    ds = DATASETS.build(ds_cfg)
    for i, (img_id, label, _, box) in enumerate(IMAGES):
        out = ds[i]
        sample = out['data_samples']
        assert out['inputs'].shape == (3, 224, 224)
        assert sample.img_id == img_id and sample.gt_label.item() == label
        plm = sample.pseudo_label_map
        assert plm.shape == (56, 56) and plm.dtype == torch.int64
        n_fg, n_bg = (plm == 1).sum().item(), (plm == 0).sum().item()
        assert n_fg == n_bg == 16
        # the sampled cells lie on the object / the background of the augmented input
        centre = out['inputs'][0, 2::4, 2::4]  # input pixel at each grid cell's centre
        assert (centre[plm == 1] == 200).all() and (centre[plm == 0] == 50).all()
        np.testing.assert_array_equal(sample.ori_gt_bboxes, [box])
    test_cfg = cfg.test_dataloader.dataset
    test_cfg.update(data_root=root, metadata_root=osp.join(root, 'metadata'), split='train')
    sample = DATASETS.build(test_cfg)[1]['data_samples']
    np.testing.assert_allclose(sample.gt_bboxes[0].numpy(),
                               [5 * 224 / 64, 30 * 224 / 96, 50 * 224 / 64, 90 * 224 / 96],
                               rtol=1e-5)
    assert 'pseudo_label_map' not in sample
