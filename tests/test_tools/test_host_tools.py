"""MMPretrain's own tools (the copies its wheel ships in ``mmpretrain/.mim/tools``) run
our configs with the config alone, with the results of our tools.

On the tiny TeD-Loc training config (tests/data/configs/tiny_tedloc_train.py: CAM
store -> PseudoLabelSampler -> losses, lean checkpoints, our overlay hook on):

* MMPretrain's ``train.py``, our ``tools/train.py`` and ``Runner.from_cfg`` in plain
  Python train the same weights (same seed and iterations);
* MMPretrain's ``test.py`` gives our ``tools/test.py``'s metrics, refuses a weightless
  checkpoint, writes our overlays with ``--show-dir`` (file names without a doubled
  suffix) and the curves figure with the metric's ``analysis_dir``;
* a partial ``load_from`` still fine-tunes (the weights check leaves training alone);
* ``tools/dist_test.sh`` and MMPretrain's ``dist_test.sh`` with 2 CPU processes exit 0
  with the overlay hook on and give the metrics of one process.
"""
import glob
import json
import os
import os.path as osp
import socket
import subprocess
import sys

import cv2
import pytest
import torch

import tedloc_mm  # noqa: F401
from tiny_tedloc import training_files

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(ROOT, 'tests/data/configs/tiny_tedloc_train.py')
HOST = osp.join(osp.dirname(__import__('mmpretrain').__file__), '.mim', 'tools')
SHORT = ['train_cfg.max_iters=4', 'train_cfg.val_interval=4',
         'default_hooks.checkpoint.interval=4']
# what MMPretrain's dist_*.sh need on CPU-only machines (docs/en/training_and_testing.md)
CPU_DIST = ['env_cfg.dist_cfg.backend=gloo', 'model_wrapper_cfg.device_ids=None']


def _env():
    return dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS='1', HF_HUB_OFFLINE='1',
                PATH=osp.dirname(sys.executable) + os.pathsep + os.environ['PATH'])


def _start(args):
    return subprocess.Popen(args, cwd=ROOT, env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def _finish(proc, ok=True):
    out = proc.communicate(timeout=900)[0]
    if ok:
        assert proc.returncode == 0, out[-5000:]
    return proc.returncode, out


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return str(s.getsockname()[1])


def _state(path):
    return torch.load(path, map_location='cpu', weights_only=False)['state_dict']


def _logged_metrics(work_dir):
    """The metrics MMEngine's LoggerHook wrote at the end of a test run."""
    (path, ) = glob.glob(osp.join(work_dir, '*', '*.json'))
    return {k: v for k, v in json.load(open(path)).items() if k.startswith('wsol/')}


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp('host_tools')
    return dict(dir=d, options=training_files(d))


@pytest.fixture(scope='module')
def trained(files):
    """The same 4 iterations by our train.py, MMPretrain's and Runner.from_cfg, and a
    fine-tuning run of MMPretrain's train.py from a checkpoint with the head only."""
    d = files['dir']
    partial = str(d / 'head_only.pth')
    torch.save({'state_dict': {'head.fg_classifier.weight': torch.zeros(1, 32, 1, 1)}},
               partial)
    runs = dict(
        ours=_start([sys.executable, 'tools/train.py', CONFIG, '--work-dir', str(d / 'ours'),
                     '--cfg-options', *files['options'], *SHORT]),
        host=_start([sys.executable, osp.join(HOST, 'train.py'), CONFIG, '--work-dir',
                     str(d / 'host'), '--cfg-options', *files['options'], *SHORT]),
        finetune=_start([sys.executable, osp.join(HOST, 'train.py'), CONFIG, '--work-dir',
                         str(d / 'finetune'), '--cfg-options', *files['options'], *SHORT,
                         f'load_from={partial}']))
    # plain Python meanwhile
    from mmengine.config import Config
    from mmengine.runner import Runner
    cfg = Config.fromfile(CONFIG)
    cfg.merge_from_dict(dict(o.split('=', 1) for o in files['options']))
    cfg.train_cfg.max_iters = cfg.train_cfg.val_interval = 4
    cfg.default_hooks.checkpoint.interval = 4
    cfg.work_dir = str(d / 'python')
    cfg.experiment_name = 'host_tools_python'
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        Runner.from_cfg(cfg).train()
    finally:
        torch.set_num_threads(threads)
    logs = {name: _finish(p)[1] for name, p in runs.items()}
    return dict(logs=logs, **{name: str(d / name) for name in ('ours', 'host', 'python',
                                                                'finetune')})


def test_host_train_and_runner_from_cfg_give_our_weights(trained):
    ours = _state(osp.join(trained['ours'], 'iter_4.pth'))
    for name in ('host', 'python'):
        other = _state(osp.join(trained[name], 'iter_4.pth'))
        assert other.keys() == ours.keys()
        for k in ours:
            torch.testing.assert_close(other[k], ours[k], rtol=0, atol=1e-6, msg=k)


def test_partial_load_from_fine_tunes(trained):
    log = trained['logs']['finetune']
    assert 'Load checkpoint from' in log and 'does not hold the weights' not in log
    assert osp.isfile(osp.join(trained['finetune'], 'iter_4.pth'))


@pytest.fixture(scope='module')
def tested(files, trained):
    """Our test.py, MMPretrain's (with --show-dir and the metric's analysis_dir), and
    both on a weightless checkpoint."""
    d = files['dir']
    ckpt = osp.join(trained['ours'], 'iter_4.pth')
    empty = str(d / 'empty.pth')
    torch.save({'state_dict': {}, 'meta': {}}, empty)
    runs = dict(
        ours=_start([sys.executable, 'tools/test.py', CONFIG, ckpt, '--work-dir',
                     str(d / 't_ours'), '--out', str(d / 't_ours.json'), '--cfg-options',
                     *files['options']]),
        host=_start([sys.executable, osp.join(HOST, 'test.py'), CONFIG, ckpt, '--work-dir',
                     str(d / 't_host'), '--show-dir', str(d / 'show'), '--cfg-options',
                     *files['options'], f'test_evaluator.analysis_dir={d / "analysis"}']),
        host_empty=_start([sys.executable, osp.join(HOST, 'test.py'), CONFIG, empty,
                           '--work-dir', str(d / 't_empty'), '--cfg-options',
                           *files['options']]))
    out = {name: _finish(p, ok=(name != 'host_empty')) for name, p in runs.items()}
    return dict(dir=d, ckpt=ckpt, out=out)


def test_host_test_gives_our_metrics(tested):
    d = tested['dir']
    ours = json.load(open(d / 't_ours.json'))
    host = _logged_metrics(str(d / 't_host'))
    assert set(host) == {k for k in ours if k.startswith('wsol/')} and len(host) > 10
    assert host == pytest.approx(ours, abs=1e-9)


def test_host_test_refuses_a_weightless_checkpoint(tested):
    rc, log = tested['out']['host_empty']
    assert rc != 0
    assert 'empty.pth does not hold the weights of this TeDLoc' in log
    assert 'neck: 10/10 tensors' in log


def test_host_show_dir_writes_our_overlays_and_the_curves(tested):
    d = tested['dir']
    files = sorted(os.listdir(d / 'show'))
    # our hook's num_images of the tiny config, named test_<image stem>_<step>.png
    assert len(files) == 3 and all(f.startswith('test_') and f.endswith('_0.png')
                                   for f in files), files
    assert not any('.jpg' in f or '.png_' in f for f in files), files
    img = cv2.imread(str(d / 'show' / files[0]))
    assert img.shape[0] == 64 and img.shape[1] > 64  # image + text strip
    assert osp.isfile(d / 'analysis' / 'curves.png')  # WSOLCurvesHook, from the config


def test_two_cpu_processes_test_what_one_does(files, tested):
    """Our dist_test.sh and MMPretrain's, 2 CPU processes, overlay hook on."""
    d = files['dir']
    env_port = _free_port()
    ours = _start(['bash', 'tools/dist_test.sh', CONFIG, tested['ckpt'], '2', '--work-dir',
                   str(d / 'dist_ours'), '--out', str(d / 'dist_ours.json'),
                   '--cfg-options', *files['options'],
                   f'default_hooks.visualization.out_dir={d / "dist_show"}'])
    host = subprocess.Popen(
        ['bash', osp.join(HOST, 'dist_test.sh'), CONFIG, tested['ckpt'], '2', '--work-dir',
         str(d / 'dist_host'), '--cfg-options', *files['options'], *CPU_DIST],
        cwd=ROOT, env=dict(_env(), PORT=env_port), stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True)
    _finish(ours)
    _finish(host)
    one = json.load(open(d / 't_ours.json'))
    assert json.load(open(d / 'dist_ours.json')) == pytest.approx(one, abs=1e-9)
    host_metrics = _logged_metrics(str(d / 'dist_host'))
    assert host_metrics == pytest.approx({k: v for k, v in one.items() if k.startswith('wsol/')},
                                         abs=1e-9)
    assert len(os.listdir(d / 'dist_show')) == 3  # drawn by the main process


def test_host_dist_train_on_two_cpu_processes(files):
    """MMPretrain's dist_train.sh, 2 CPU processes, with the documented CPU options:
    exit 0 and a checkpoint. (Weights differ from 1 process by the per-rank
    pseudo-label draws: tests/test_tools/test_dist_train.py says why.)"""
    d = files['dir']
    proc = subprocess.Popen(
        ['bash', osp.join(HOST, 'dist_train.sh'), CONFIG, '2', '--work-dir',
         str(d / 'dist_train'), '--cfg-options', *files['options'], *SHORT, *CPU_DIST,
         'train_dataloader.batch_size=2'],
        cwd=ROOT, env=dict(_env(), PORT=_free_port()), stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True)
    _finish(proc)
    assert osp.isfile(d / 'dist_train' / 'iter_4.pth')
