"""tools/analysis_tools/browse_pseudo_labels.py draws what the train pipeline produced."""
import importlib.util
import os.path as osp

import cv2
import numpy as np
import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import set_random_seed

import tedloc_mm  # noqa: F401
from tedloc_mm.embedded_benchmarks.gliders import generate_synthetic_wsol
from tedloc_mm.fileio.cam_store import CAMStoreWriter
from tedloc_mm.registry import DATASETS

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
STRIDE = 4


def load_tool():
    spec = importlib.util.spec_from_file_location(
        'browse_tool', osp.join(ROOT, 'tools/analysis_tools/browse_pseudo_labels.py'))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def blob_cam(box, size=32, img_size=64):
    """A smooth CAM peaked on a GT box (the store's grid is ``size`` x ``size``)."""
    x0, y0, x1, y1 = np.asarray(box, float) * size / img_size
    yy, xx = np.mgrid[:size, :size] + 0.5
    cx, cy, sx, sy = (x0 + x1) / 2, (y0 + y1) / 2, max(x1 - x0, 1) / 2, max(y1 - y0, 1) / 2
    return np.exp(-((xx - cx) / sx) ** 2 - ((yy - cy) / sy) ** 2).astype(np.float32)


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    d = tmp_path_factory.mktemp('browse')
    data = str(d / 'data')
    generate_synthetic_wsol(data, seed=4, num_classes=2, num_train=2, num_val=0,
                            num_test=0, image_size=64)
    cfg = Config.fromfile(osp.join(ROOT, 'tests/data/configs/tiny_tedloc.py'))
    cfg.train_dataloader = dict(
        batch_size=2, num_workers=0, sampler=dict(type='DefaultSampler', shuffle=False),
        dataset=dict(type='WSOLDataset', data_root=data, split='train', pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='LoadCAM', cam_store=str(d / 'cams')),
            dict(type='WSOLRandomFlip', prob=0.5, direction='horizontal'),
            dict(type='PseudoLabelSampler', grid_stride=STRIDE, num_samples=6),
            dict(type='PackWSOLInputs')]))
    cfg_file = str(d / 'cfg.py')
    cfg.dump(cfg_file)
    init_default_scope('tedloc')
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    with CAMStoreWriter(str(d / 'cams'), 'part-0', 32) as writer:
        for i in range(len(dataset)):
            info = dataset.get_data_info(i)
            writer.write(info['img_id'], blob_cam(info['ori_gt_bboxes'][0]))
    return dict(dir=d, cfg_file=cfg_file, dataset=dataset)


def test_panels_show_the_pipeline_outputs(tiny, tmp_path):
    out = tmp_path / 'pics'
    records = load_tool().main([tiny['cfg_file'], '--output-dir', str(out), '-n', '3',
                                '--seed', '7', '--panel-size', '200'])
    assert len(records) == 3

    # the tool ran the config's pipeline: the same seed through the dataset itself
    # (packing included) gives the same flips and the same sampled cells
    set_random_seed(7)
    packed = [tiny['dataset'][i] for i in range(3)]
    flips = []
    for rec, ref in zip(records, packed):
        res, layout = rec['results'], rec['layout']
        labels = res['pseudo_label_map']
        np.testing.assert_array_equal(labels, ref['data_samples'].pseudo_label_map.numpy())
        np.testing.assert_array_equal(res['img'],
                                      ref['inputs'].permute(1, 2, 0).numpy())
        flips.append(bool(res.get('flip')))
        assert (labels == 1).sum() == (labels == 0).sum() == 6

        pic = cv2.imread(rec['file'])[..., ::-1]  # the written file, RGB
        s = layout['scale']
        assert s == 3 and layout['panel_hw'] == (192, 192)

        def centre(panel, i, j):
            """RGB at the centre of decoder cell (i, j) of a panel."""
            x0, y0 = layout['panels'][panel]
            return pic[y0 + (i * STRIDE + STRIDE // 2) * s, x0 + (j * STRIDE + STRIDE // 2) * s]

        # panel 1 is the augmented image, scaled by nearest neighbour
        x0, y0 = layout['panels']['image']
        img_rgb = res['img'][..., ::-1]
        np.testing.assert_array_equal(pic[y0:y0 + 192:s, x0:x0 + 192:s], img_rgb)
        # panel 4: red at every FG cell, blue at every BG cell, a dark image elsewhere
        gh, gw = labels.shape
        for i in range(gh):
            for j in range(gw):
                got = centre('samples', i, j).astype(int)
                under = img_rgb[i * STRIDE + STRIDE // 2, j * STRIDE + STRIDE // 2]
                if labels[i, j] == 1:
                    assert tuple(got) == (230, 30, 30), (i, j)
                elif labels[i, j] == 0:
                    assert tuple(got) == (40, 120, 255), (i, j)
                else:
                    np.testing.assert_allclose(got, under * 0.35, atol=1)
                # panel 3: the image inside the Otsu region, darkened outside
                # (cell centres are never on the one-pixel outline)
                reg = centre('region', i, j).astype(int)
                want = under if res['pseudo_fg_region'][i, j] else under * 0.35
                np.testing.assert_allclose(reg, want, atol=1)
        # the region is where the CAM is high: FG cells inside, BG cells outside
        region = res['pseudo_fg_region']
        assert region[labels == 1].all() and not region[labels == 0].any()
        # panel 2: hotter (redder) where the CAM peaks than where it is lowest
        cam = res['cam']
        hot = np.unravel_index(np.argmax(cam), cam.shape)
        cold = np.unravel_index(np.argmin(cam), cam.shape)
        xc, yc = layout['panels']['cam']
        p_hot = pic[yc + hot[0] * s, xc + hot[1] * s].astype(int)
        p_cold = pic[yc + cold[0] * s, xc + cold[1] * s].astype(int)
        assert p_hot[0] - p_hot[2] > p_cold[0] - p_cold[2] + 60
    assert set(flips) == {True, False}  # seed 7 flips some images and not others


def test_errors(tiny, tmp_path):
    tool = load_tool()
    with pytest.raises(SystemExit):
        tool.parse_args([tiny['cfg_file']])  # neither --output-dir nor --show
    cfg = Config.fromfile(tiny['cfg_file'])
    cfg.train_dataloader.dataset.pipeline = [dict(type='LoadImageFromFile'),
                                             dict(type='PackWSOLInputs')]
    bad = str(tmp_path / 'no_sampler.py')
    cfg.dump(bad)
    with pytest.raises(ValueError, match='PseudoLabelSampler'):
        tool.main([bad, '--output-dir', str(tmp_path / 'o')])
