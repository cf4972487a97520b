"""Saved maps for any evaluator: tools/test.py --save-scoremaps (WSOLMetric(scoremap_dir=))
writes the maps it scored, and eval_scoremaps.py on that folder, with the run's
evaluation size and CAM threshold step, gives the run's numbers to the last digit."""
import json
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config

import tedloc_mm  # noqa: F401
from tedloc_mm.embedded_benchmarks.gliders import generate_synthetic_wsol
from tedloc_mm.evaluation.scoremap_dir import read_predictions
from tedloc_mm.fileio import read_wsol_split, save_anchor_file
from tool_module import load_tool

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
#: the metrics both report, in the run's names (without the 'wsol/' prefix)
COMPARED = ('MaxBoxAcc', 'MaxBoxAccV2', 'MaxBoxAccV2@0.3', 'MaxBoxAccV2@0.5',
            'MaxBoxAccV2@0.7', 'best_thr', 'Top1Loc', 'Top5Loc', 'Top1Loc@best_thr',
            'Top5Loc@best_thr', 'Top1Cls', 'Top5Cls', 'PxAP')


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp('save_scoremaps')
    data = str(d / 'data')
    generate_synthetic_wsol(data, seed=3, num_classes=3, num_train=0, num_val=5,
                            num_test=0, image_size=64)
    anchors = str(d / 'anchors.pth')
    save_anchor_file(anchors, torch.randn(3, 32, generator=torch.Generator().manual_seed(1)),
                     ['a', 'b', 'c'], 'tiny', 'random-init', ['{}'])
    return dict(dir=d, data=data, anchors=anchors)


def run_and_evaluate(setup, eval_size, interval, name):
    d = setup['dir']
    cfg = Config.fromfile(osp.join(ROOT, 'tests/data/configs/tiny_tedloc.py'))
    cfg.model.head.anchor_file = setup['anchors']
    cfg.val_dataloader.dataset.data_root = setup['data']
    cfg.test_dataloader = cfg.val_dataloader
    cfg.test_evaluator = dict(type='WSOLMetric', eval_size=eval_size,
                              cam_curve_interval=interval)
    cfg.custom_hooks = []
    cfg_file = str(d / f'{name}.py')
    cfg.dump(cfg_file)
    maps = str(d / f'{name}_maps')
    run = load_tool('tools/test.py').main([cfg_file, 'none', '--work-dir', str(d / name),
                                           '--save-scoremaps', maps])
    run = {k[len('wsol/'):]: v for k, v in run.items()}
    meta = json.load(open(osp.join(maps, 'scoremaps.json')))
    res = load_tool('tools/analysis_tools/eval_scoremaps.py').main([
        '--scoremap_root', maps, '--metadata_root', osp.join(setup['data'], 'metadata'),
        '--mask_root', setup['data'], '--dataset_name', 'CUB', '--split', 'val',
        '--eval_size', str(meta['eval_size'][0]),
        '--cam_curve_interval', str(meta['cam_curve_interval']),
        '--iou_threshold_list', *map(str, meta['iou_threshold_list']),
        '--predictions', osp.join(maps, 'predictions.txt'), '--no_progress'])
    return run, res, maps, meta


@pytest.mark.parametrize('eval_size,interval', [(224, 0.01), (96, 0.004)])
def test_saved_maps_give_the_runs_numbers_to_the_last_digit(setup, eval_size, interval):
    run, res, maps, meta = run_and_evaluate(setup, eval_size, interval, f'run{eval_size}')
    assert meta['eval_size'] == [eval_size, eval_size]
    assert meta['cam_curve_interval'] == interval
    assert meta['metrics'] == run
    got = res['metrics']
    assert set(COMPARED) <= set(run)                  # boxes, classes and masks all scored
    assert {k: got[k] for k in COMPARED} == {k: run[k] for k in COMPARED}
    # the files: one float32 map per image id, named as wsolevaluation reads them
    infos = read_wsol_split(osp.join(setup['data'], 'metadata', 'val'), require_sizes=False)
    for info in infos:
        cam = np.load(osp.join(maps, info['img_id'] + '.npy'))
        assert cam.dtype == np.float32 and cam.shape == (eval_size, eval_size)
        assert cam.min() == 0.0 and cam.max() == 1.0
    # the full score vector of each image (3 classes)
    lines = open(osp.join(maps, 'predictions.txt')).read().splitlines()
    assert len(lines) == len(infos) and all(len(ln.split(',')) == 4 for ln in lines)
    top5, _ = read_predictions(osp.join(maps, 'predictions.txt'),
                               [i['img_id'] for i in infos])
    assert len(top5) == len(infos)


def test_other_settings_are_noted(setup, capsys):
    run, res, maps, meta = run_and_evaluate(setup, 224, 0.01, 'noted')
    load_tool('tools/analysis_tools/eval_scoremaps.py').main([
        '--scoremap_root', maps, '--metadata_root', osp.join(setup['data'], 'metadata'),
        '--mask_root', setup['data'], '--dataset_name', 'CUB', '--split', 'val',
        '--cam_curve_interval', '0.05', '--no_progress'])
    err = capsys.readouterr().err
    assert 'used --cam_curve_interval 0.01; given 0.05' in err


def test_galleries_from_saved_maps_evaluated_elsewhere(setup, tmp_path, capsys):
    """eval_scoremaps.py --plot_dir on the saved maps writes the per-image file;
    analyze_results.py draws from it and the maps (images from --data-root), no model,
    and its summary is the run's."""
    run, res, maps, meta = run_and_evaluate(setup, 224, 0.01, 'gallery')
    plots = str(tmp_path / 'plots')
    load_tool('tools/analysis_tools/eval_scoremaps.py').main([
        '--scoremap_root', maps, '--metadata_root', osp.join(setup['data'], 'metadata'),
        '--mask_root', setup['data'], '--dataset_name', 'CUB', '--split', 'val',
        '--predictions', osp.join(maps, 'predictions.txt'), '--no_progress',
        '--plot_dir', plots])
    capsys.readouterr()
    out = load_tool('tools/analysis_tools/analyze_results.py').main([
        osp.join(plots, 'per_image.jsonl'), '--scoremaps', maps, '--data-root', setup['data'],
        '--out-dir', str(tmp_path / 'gallery'), '--topk', '2'])
    assert out['recomputed'] == 0
    printed = capsys.readouterr().out
    assert f"MaxBoxAcc (IoU 0.5): {run['MaxBoxAcc']} (" in printed
    assert f"Top-1 Loc at that threshold: {run['Top1Loc@best_thr']} (" in printed
    assert osp.isfile(tmp_path / 'gallery' / 'best.png')
