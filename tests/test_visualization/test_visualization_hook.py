"""WSOLVisualizationHook draws the first N images of a tiny validation run."""
import glob
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

import tedloc_mm  # noqa: F401
from tedloc_mm.embedded_benchmarks.gliders import generate_synthetic_wsol
from tedloc_mm.registry import HOOKS
from tedloc_mm.fileio import save_anchor_file
from tedloc_mm.visualization import visualization_hook

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp('vishook')
    root = str(d / 'synthetic')
    # 3 classes x 2 val images, 64 px
    generate_synthetic_wsol(root, seed=3, num_classes=3, num_train=0, num_val=2,
                            num_test=0, image_size=64)
    anchors = str(d / 'anchors.pth')
    save_anchor_file(anchors, torch.randn(3, 32, generator=torch.Generator().manual_seed(0)),
                     ['a', 'b', 'c'], 'tiny', 'random-init', ['{}'])
    return root, anchors


def make_cfg(data, work_dir, hook):
    root, anchors = data
    cfg = Config.fromfile(osp.join(ROOT, 'tests/data/configs/tiny_tedloc.py'))
    cfg.model.head.anchor_file = anchors
    cfg.val_dataloader.dataset.data_root = root
    cfg.test_dataloader = cfg.val_dataloader
    cfg.work_dir = str(work_dir)
    cfg.default_hooks.visualization = hook  # our configs' place for it
    # unique visualizer instance per runner (MMEngine names it by experiment + time)
    cfg.experiment_name = f'vishook_{osp.basename(str(work_dir.parent))}'
    return cfg


def test_hook_writes_first_n_images_at_the_metric_threshold(data, tmp_path, monkeypatch):
    used = []
    original = visualization_hook.predicted_box_edges

    def spy(pred_map, thr):
        used.append(thr)
        return original(pred_map, thr)

    monkeypatch.setattr(visualization_hook, 'predicted_box_edges', spy)
    out_dir = tmp_path / 'extra'
    cfg = make_cfg(data, tmp_path / 'work',
                   dict(type='WSOLVisualizationHook', num_images=3, out_dir=str(out_dir)))
    runner = Runner.from_cfg(cfg)
    metrics = runner.val()
    files = sorted(glob.glob(osp.join(str(tmp_path / 'work'), '*', 'vis_data', 'vis_image',
                                      '*.png')))
    # the first 3 of the 6 validation images (batches of 2), through the LocalVisBackend
    dataset = runner.val_dataloader.dataset
    first = [osp.splitext(osp.basename(dataset.get_data_info(i)['img_path']))[0]
             for i in range(3)]
    assert [osp.basename(f) for f in files] == sorted(f'val_{n}_0.png' for n in first)
    for f in files:
        img = cv2.imread(f)
        assert img.shape[0] == 64 and img.shape[1] > 64  # the text strip beside the image
    assert len(glob.glob(str(out_dir / '*.png'))) == 3
    # every box was drawn at the threshold this validation chose
    assert used == [metrics['wsol/best_thr']] * 3


def test_hook_on_test_with_fixed_threshold_and_options(data, tmp_path, monkeypatch):
    used = []
    monkeypatch.setattr(visualization_hook, 'predicted_box_edges',
                        lambda m, t: used.append(t))
    cfg = make_cfg(data, tmp_path / 'work',
                   dict(type='WSOLVisualizationHook', num_images=10, cam_threshold=0.3,
                        out_dir=str(tmp_path / 'o')))
    Runner.from_cfg(cfg).test()
    assert used == [0.3] * 6  # all 6 images (fewer than num_images)
    assert len(glob.glob(str(tmp_path / 'o' / 'test_*.png'))) == 6
    with pytest.raises(ValueError, match=r'\[0, 1\)'):
        HOOKS.build(dict(type='WSOLVisualizationHook', cam_threshold=2))


def test_hook_images_reach_tensorboard(data, tmp_path):
    """With MMEngine's TensorboardVisBackend the hook's pictures land in an event file:
    read back with TensorBoard's event accumulator, each is the PNG the
    LocalVisBackend wrote, pixel for pixel."""
    # tensorboard is a test requirement (requirements/tests.txt)
    from tensorboard.backend.event_processing.event_accumulator import (
        IMAGES, EventAccumulator)
    cfg = make_cfg(data, tmp_path / 'work', dict(type='WSOLVisualizationHook', num_images=2))
    cfg.visualizer = dict(type='UniversalVisualizer',
                          vis_backends=[dict(type='LocalVisBackend'),
                                        dict(type='TensorboardVisBackend')])
    runner = Runner.from_cfg(cfg)
    runner.val()
    runner.visualizer.close()  # flushes the event file
    events = glob.glob(osp.join(str(tmp_path / 'work'), '*', 'vis_data',
                                'events.out.tfevents.*'))
    assert len(events) == 1
    acc = EventAccumulator(events[0], size_guidance={IMAGES: 0})
    acc.Reload()
    dataset = runner.val_dataloader.dataset
    first = [osp.splitext(osp.basename(dataset.get_data_info(i)['img_path']))[0]
             for i in range(2)]
    assert sorted(acc.Tags()[IMAGES]) == sorted(f'val_{n}' for n in first)
    for name in first:
        (event, ) = acc.Images(f'val_{name}')
        # the 64 px image plus the label strip beside it
        assert event.step == 0 and event.height == 64 and event.width > 64
        tb = cv2.imdecode(np.frombuffer(event.encoded_image_string, np.uint8),
                          cv2.IMREAD_COLOR)
        local = cv2.imread(glob.glob(osp.join(str(tmp_path / 'work'), '*', 'vis_data',
                                              'vis_image', f'val_{name}_0.png'))[0])
        assert tb.shape == (event.height, event.width, 3)
        np.testing.assert_array_equal(tb, local)
        assert tb.std() > 5  # a picture, not a blank image
