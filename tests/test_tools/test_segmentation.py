"""The segmenter config trains and tests through MMEngine's Runner in the 'mmseg' scope
with tools/train.py and tools/test.py, on exports of wsol_to_mmseg.py of a tiny
hand-made set (train: pseudo-masks from score maps; val / test: true masks)."""
import importlib.util
import json
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest

from tiny_seg_data import make_wsol, square

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = 'configs/demo/fcn_frozen-efficientnet-lite0_stamps-seg.py'


def _tool(path, name):
    spec = importlib.util.spec_from_file_location(name, osp.join(REPO, path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(args):
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1')
    proc = subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, f'{args[0]} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}'
    return proc


@pytest.fixture(scope='module')
def exports(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('seg')
    data = make_wsol(str(tmp / 'wsol'), size=32)
    export = _tool('tools/dataset_converters/wsol_to_mmseg.py', 'wsol_to_mmseg')
    maps = tmp / 'maps'
    with open(osp.join(data, 'metadata', 'train', 'image_ids.txt')) as f:
        ids = f.read().split()
    for i, img_id in enumerate(ids):  # pseudo-masks = the squares, slightly too large
        y0, y1, x0, x1 = square(32, i)
        m = np.zeros((32, 32), np.float32)
        m[max(0, y0 - 1):y1 + 1, max(0, x0 - 1):x1 + 1] = 1
        (maps / osp.dirname(img_id)).mkdir(parents=True, exist_ok=True)
        np.save(maps / (img_id + '.npy'), m)
    gt, pseudo = str(tmp / 'gt'), str(tmp / 'pseudo')
    for split in ('val', 'test'):
        export.main(['true-masks', '--data-root', data, '--split', split, '--out', gt])
    export.main(['scoremaps', str(maps), '--data-root', data, '--split', 'train',
                 '--out', pseudo, '--fg-thr', '0.5'])
    return tmp, gt, pseudo


def test_segmenter_trains_and_tests_in_mmseg_scope(exports):
    tmp, gt, pseudo = exports
    sys.path.insert(0, osp.join(REPO, 'tools'))
    try:
        from run_synthetic_pipeline import seg_data_options
    finally:
        sys.path.pop(0)
    from mmengine.config import Config

    from tedloc_mm.workflow.config_options import evaluator_options, schedule_options
    cfg = Config.fromfile(osp.join(REPO, CONFIG))
    opts = seg_data_options(gt)  # the classes of the export: background, a, b
    assert 'model.decode_head.num_classes=3' in opts
    work = str(tmp / 'work')
    _run(['tools/train.py', CONFIG, '--work-dir', work, '--cfg-options',
          f'train_dataloader.dataset.data_root={pseudo}', *opts,
          'train_dataloader.batch_size=2', 'val_dataloader.batch_size=2',
          *schedule_options(cfg, max_iters=2, val_interval=2, val_begin=None),
          'default_hooks.logger.interval=1'])
    best = [f for f in os.listdir(work) if f.startswith('best_mIoU')]
    assert best, os.listdir(work)
    ckpt = osp.join(work, best[0])
    # the Runner ran in the 'mmseg' scope with MMSegmentation's model and metric
    with open(osp.join(work, [d for d in os.listdir(work) if d[:2] == '20'][0],
                       'vis_data', 'config.py')) as f:
        text = f.read()
    assert "default_scope = 'mmseg'" in text and "type='mmseg.EncoderDecoder'" in text

    # IoUMetric's float32 best score in the message hub: loads without the opt-in
    metrics = str(tmp / 'test.json')
    _run(['tools/test.py', CONFIG, ckpt, '--work-dir', str(tmp / 'test'), '--out', metrics,
          '--cfg-options', *opts,
          *evaluator_options(cfg, 'IoUMetric', output_dir=tmp / 'pred')])
    with open(metrics) as f:
        result = json.load(f)
    assert {'mIoU', 'aAcc', 'mAcc', 'FG-IoU', 'BG-IoU'} <= set(result)
    assert all(0 <= v <= 100 for v in result.values())
    assert sorted(os.listdir(tmp / 'pred')) == ['x0.png', 'x1.png']

    # ... and needs numpy.dtypes.Float32DType on the allowlist (NEEDED_ELSEWHERE in
    # tests/test_fileio/test_checkpoint_files.py)
    from mmengine.runner.checkpoint import CheckpointLoader

    from tedloc_mm.fileio import checkpoint as safe_checkpoint
    from tedloc_mm.fileio.checkpoint import UnsafeCheckpointError
    full = safe_checkpoint._safe_globals_list
    safe_checkpoint._safe_globals_list = lambda: [
        g for g in full() if g[1] != 'numpy.dtypes.Float32DType']
    try:
        with pytest.raises(UnsafeCheckpointError, match='Float32DType'):
            CheckpointLoader.load_checkpoint(ckpt, map_location='cpu')
    finally:
        safe_checkpoint._safe_globals_list = full


def test_mmseg_own_tools_train_and_test_from_the_exports_alone(exports):
    """MMSegmentation's own tools/train.py and test.py (its wheel's copies), given only
    where the exports are and the decode head's class count by name: the dataset reads
    classes, palette and image suffix from seg_meta.json, CheckSegLabel its class count
    from the samples, and a label outside the export's classes is refused."""
    import mmseg
    tools = osp.join(osp.dirname(mmseg.__file__), '.mim', 'tools')
    tmp, gt, pseudo = exports
    with open(osp.join(gt, 'seg_meta.json')) as f:
        meta = json.load(f)
    assert meta['classes'] == ['background', 'a', 'b']
    opts = ['model.decode_head.num_classes=3', f'train_dataloader.dataset.data_root={pseudo}',
            f'val_dataloader.dataset.data_root={gt}', f'test_dataloader.dataset.data_root={gt}']
    work = str(tmp / 'host_work')
    _run([osp.join(tools, 'train.py'), CONFIG, '--work-dir', work, '--cfg-options', *opts,
          'train_dataloader.batch_size=2', 'val_dataloader.batch_size=2',
          'train_cfg.max_iters=2', 'train_cfg.val_interval=2',
          'default_hooks.checkpoint.interval=2'])
    ckpt = osp.join(work, 'iter_2.pth')
    assert osp.isfile(ckpt), os.listdir(work)
    _run([osp.join(tools, 'test.py'), CONFIG, ckpt, '--work-dir', str(tmp / 'host_test'),
          '--cfg-options', *opts])
    logs = [osp.join(r, f) for r, _, fs in os.walk(tmp / 'host_test') for f in fs
            if f.endswith('.json') and f[:2] == '20']
    result = json.load(open(logs[0]))
    assert {'mIoU', 'FG-IoU'} <= set(result)

    from mmengine.registry import DefaultScope

    import tedloc_mm  # noqa: F401
    from tedloc_mm.fileio.seg_labels import SegLabelError
    from tedloc_mm.registry import DATASETS
    with DefaultScope.overwrite_default_scope('mmseg'):
        ds = DATASETS.build(dict(type='tedloc.SegExportDataset', data_root=gt,
                                 ann_file='splits/val.txt', pipeline=[
                                     dict(type='LoadImageFromFile'),
                                     dict(type='LoadAnnotations'),
                                     dict(type='tedloc.CheckSegLabel')]))
    assert ds.metainfo['classes'] == ('background', 'a', 'b')
    assert ds.metainfo['palette'] == meta['palette']
    out = ds[0]
    assert out['num_seg_classes'] == 3 and out['gt_seg_map'].max() <= 2
    # a label value 3 in a 3-class export: refused, naming the file
    import cv2
    path = out['seg_map_path']
    label = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    label.flat[0] = 3
    bad_root = tmp / 'bad_gt'
    import shutil
    shutil.copytree(gt, bad_root, symlinks=True)
    cv2.imwrite(path.replace(gt, str(bad_root)), label)
    with DefaultScope.overwrite_default_scope('mmseg'):
        bad = DATASETS.build(dict(type='tedloc.SegExportDataset', data_root=str(bad_root),
                                  ann_file='splits/val.txt', pipeline=[
                                      dict(type='LoadImageFromFile'),
                                      dict(type='LoadAnnotations'),
                                      dict(type='tedloc.CheckSegLabel')]))
    with pytest.raises(SegLabelError, match=osp.basename(path)):
        bad[0]
