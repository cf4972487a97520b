"""tools/test.py --analysis-dir (files, TensorBoard), analyze_results.py (galleries of the
chosen images only) and plot_wsol_curves.py (several runs), on a tiny TeD-Loc."""
import glob
import json
import os
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config

import tedloc_mm  # noqa: F401
from tedloc_mm.embedded_benchmarks.gliders import generate_synthetic_wsol
from tedloc_mm.evaluation.per_image_results import read_per_image_results
from tedloc_mm.evaluation.wsol_analysis import FAILURE_KINDS
from tedloc_mm.fileio import save_anchor_file
from tedloc_mm.tool_errors import UserError
from tool_module import load_tool

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


@pytest.fixture(scope='module')
def tested(tmp_path_factory):
    """tools/test.py --analysis-dir on 12 validation images (3 classes x 4), with a
    TensorBoard backend in the config's visualizer."""
    d = tmp_path_factory.mktemp('analysis')
    root = str(d / 'data')
    generate_synthetic_wsol(root, seed=5, num_classes=3, num_train=0, num_val=4,
                            num_test=0, image_size=64)
    anchors = str(d / 'anchors.pth')
    save_anchor_file(anchors, torch.randn(3, 32, generator=torch.Generator().manual_seed(0)),
                     ['a', 'b', 'c'], 'tiny', 'random-init', ['{}'])
    cfg = Config.fromfile(osp.join(ROOT, 'tests/data/configs/tiny_tedloc.py'))
    cfg.model.head.anchor_file = anchors
    cfg.val_dataloader.dataset.data_root = root
    cfg.test_dataloader = cfg.val_dataloader
    cfg.visualizer = dict(type='Visualizer', vis_backends=[
        dict(type='LocalVisBackend'), dict(type='TensorboardVisBackend')])
    cfg_file = str(d / 'cfg.py')
    cfg.dump(cfg_file)
    out_dir = str(d / 'analysis')
    maps = str(d / 'maps')
    metrics = load_tool('tools/test.py').main(
        [cfg_file, 'none', '--work-dir', str(d / 'work'), '--analysis-dir', out_dir,
         '--save-scoremaps', maps])
    return dict(dir=d, cfg=cfg_file, out=out_dir, metrics=metrics, maps=maps)


def test_test_py_writes_the_analysis_files(tested):
    out, metrics = tested['out'], tested['metrics']
    curves = json.load(open(osp.join(out, 'curves.json')))
    assert max(curves['box_acc']['largest']['0.5']) == metrics['wsol/MaxBoxAcc']
    assert curves['best_thr'] == metrics['wsol/best_thr']
    header, lines = read_per_image_results(osp.join(out, 'per_image.jsonl'))
    assert header['num_images'] == 12 and header['cam_threshold'] == metrics['wsol/best_thr']
    assert header['classes'] == open(osp.join(str(tested['dir']), 'data', 'metadata',
                                              'class_names.txt')).read().split('\n')[:3]
    kinds = [ln['kind'] for ln in lines]
    assert sum(kinds.count(k) for k in FAILURE_KINDS) == 12
    assert kinds.count('correct') * 100 / 12 == pytest.approx(metrics['wsol/Top1Loc@best_thr'])
    failures = json.load(open(osp.join(out, 'failures.json')))
    assert failures['counts'] == {k: kinds.count(k) for k in FAILURE_KINDS}
    png = cv2.imread(osp.join(out, 'curves.png'))
    assert png is not None and png.shape[1] > png.shape[0] > 300


def test_test_py_sends_the_curves_to_tensorboard(tested):
    from tensorboard.backend.event_processing.event_accumulator import (
        IMAGES, SCALARS, EventAccumulator)
    events = glob.glob(osp.join(str(tested['dir'] / 'work'), '*', 'vis_data',
                                'events.out.tfevents.*'))
    assert len(events) == 1
    acc = EventAccumulator(events[0], size_guidance={IMAGES: 0, SCALARS: 0})
    acc.Reload()
    (image, ) = acc.Images('wsol_curves')
    png = cv2.imread(osp.join(tested['out'], 'curves.png'))
    assert (image.height, image.width) == png.shape[:2]
    curves = json.load(open(osp.join(tested['out'], 'curves.json')))
    scalars = acc.Scalars('wsol_curve/box_acc_largest@0.5')
    assert [s.step for s in scalars] == list(range(100))
    assert np.allclose([s.value for s in scalars], curves['box_acc']['largest']['0.5'])


def test_analyze_results_draws_the_chosen_images_only(tested, tmp_path):
    per_image = osp.join(tested['out'], 'per_image.jsonl')
    _, lines = read_per_image_results(per_image)
    result = load_tool('tools/analysis_tools/analyze_results.py').main(
        [tested['cfg'], 'none', per_image, '--out-dir', str(tmp_path), '--topk', '2'])
    groups = result['groups']
    by_iou = sorted(ln['iou'] for ln in lines)
    assert [g['iou'] for g in groups['best']] == by_iou[::-1][:2]
    assert [g['iou'] for g in groups['worst']] == by_iou[:2]
    for kind in FAILURE_KINDS:
        assert len(groups[kind]) == min(2, sum(ln['kind'] == kind for ln in lines))
        assert all(g['kind'] == kind for g in groups[kind])
    chosen = {g['img_id'] for sel in groups.values() for g in sel}
    # the model ran on the chosen images and on no other
    assert result['recomputed'] == len(chosen) < 12
    for group, sel in groups.items():
        files = sorted(glob.glob(str(tmp_path / group / '*.png')))
        assert len(files) == len(sel)
        for f in files:
            img = cv2.imread(f)
            assert img.shape[0] == 64 and img.shape[1] > 64   # the strip beside the image
        assert osp.isfile(tmp_path / f'{group}.png') == bool(sel)


def test_analyze_results_refuses_ids_outside_the_test_set(tested, tmp_path):
    per_image = osp.join(tested['out'], 'per_image.jsonl')
    text = open(per_image).read().replace('"img_id":"', '"img_id":"elsewhere/')
    bad = tmp_path / 'per_image.jsonl'
    bad.write_text(text)
    with pytest.raises(UserError, match='not in the config\'s test set'):
        load_tool('tools/analysis_tools/analyze_results.py').main(
            [tested['cfg'], 'none', str(bad), '--out-dir', str(tmp_path / 'g')])


def test_analyze_results_from_saved_maps_runs_no_model(tested, tmp_path, capsys):
    """With the run's saved maps the tool draws without the model, and its summary
    gives the run's numbers to the last digit."""
    per_image = osp.join(tested['out'], 'per_image.jsonl')
    _, lines = read_per_image_results(per_image)
    tool = load_tool('tools/analysis_tools/analyze_results.py')
    result = tool.main([per_image, '--scoremaps', tested['maps'], '--out-dir',
                        str(tmp_path), '--topk', '2'])
    assert result['recomputed'] == 0 and result['scoremaps'] == tested['maps']
    m = tested['metrics']
    out = capsys.readouterr().out
    assert f"MaxBoxAcc (IoU 0.5): {m['wsol/MaxBoxAcc']} (" in out
    assert f"Top-1 Loc at that threshold: {m['wsol/Top1Loc@best_thr']} (" in out
    assert f"Top-1 Cls: {m['wsol/Top1Cls']} (" in out
    assert f"CAM threshold {m['wsol/best_thr']:g} (the run's best)" in out
    assert 'System environment' not in out
    # the same selection as with the model; drawn at the evaluation size (64 here)
    again = tool.main([tested['cfg'], 'none', per_image, '--out-dir', str(tmp_path / 'm'),
                       '--topk', '2'])
    assert again['groups'] == result['groups'] and again['recomputed'] > 0
    for group, sel in result['groups'].items():
        files = sorted(glob.glob(str(tmp_path / group / '*.png')))
        assert len(files) == len(sel)
        assert all(cv2.imread(f).shape[0] == 64 for f in files)
    # a map of the chosen images is missing: named
    chosen = result['groups']['best'][0]['img_id']
    os.remove(osp.join(tested['maps'], chosen + '.npy'))
    try:
        with pytest.raises(FileNotFoundError, match=chosen):
            tool.main([per_image, '--scoremaps', tested['maps'], '--out-dir',
                       str(tmp_path / 'x'), '--topk', '2'])
    finally:
        np.save(osp.join(tested['maps'], chosen + '.npy'), np.zeros((64, 64), np.float32))
    # neither maps nor a config: refused with what to give
    with pytest.raises(UserError, match='give CONFIG CHECKPOINT PER_IMAGE_FILE'):
        tool.main([per_image, '--out-dir', str(tmp_path / 'y')])


def test_plot_several_runs_on_one_figure(tested, tmp_path):
    tool = load_tool('tools/analysis_tools/plot_wsol_curves.py')
    out = str(tmp_path / 'two.png')
    assert tool.cli([tested['out'], osp.join(tested['out'], 'curves.json'), '--out', out,
                     '--legend', 'run A', 'run B']) == 0
    assert cv2.imread(out) is not None
    assert tool.cli([tested['out'], '--out', out, '--legend', 'a', 'b']) == 2
    not_curves = tmp_path / 'x.json'
    not_curves.write_text('{"a": 1}')
    assert tool.cli([str(not_curves), '--out', out]) == 2
