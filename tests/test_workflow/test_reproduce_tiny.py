"""tools/reproduce_paper.py --dataset ilsvrc through every step on a tiny config
(tests/data/configs/tiny_tedloc_ilsvrc.py: tiny EVA-01, K = 3, 64 px), with small
random-weight files in the real formats and an ILSVRC-layout data set made here; a
training killed after iteration 4 and re-run with the same command resumes and ends on
the table of an uninterrupted run (lean checkpoints, the same data order: exact)."""
import json
import os
import os.path as osp
import signal
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group('reproduce_tiny')]
REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = 'tests/data/configs/tiny_tedloc_ilsvrc.py'


@pytest.fixture(scope='module')
def inputs(tmp_path_factory):
    from tedloc_mm.clip.checkpoint import write_random_clip_file
    from tedloc_mm.embedded_benchmarks.gliders import generate_synthetic_wsol
    from tedloc_mm.models.utils.eva_checkpoint import write_random_timm_eva_file
    d = tmp_path_factory.mktemp('tiny_ilsvrc')
    generate_synthetic_wsol(str(d / 'ILSVRC'), seed=3, num_classes=3, num_train=4,
                            num_val=2, num_test=2, image_size=64)
    write_random_timm_eva_file(str(d / 'eva.pth'), 'eva_large_patch14_196', img_size=64,
                               patch_size=8, embed_dim=64, depth=2, num_heads=4, mlp_ratio=2)
    write_random_clip_file(str(d / 'ViT-S-32.pt'), 'ViT-S-32', openai_archive=True)
    write_random_clip_file(str(d / 'text.bin'), 'ViT-S-32-alt', openai_archive=False)
    return d


@pytest.fixture(scope='module')
def whole(inputs, tmp_path_factory):
    """The work folder of an uninterrupted run."""
    work = tmp_path_factory.mktemp('whole')
    _run(inputs, work)
    return work


def _run(inputs, work, config=CONFIG, check=True, env=None):
    env = dict(os.environ, HF_HUB_OFFLINE='1', OMP_NUM_THREADS='1',
               PYTHONPATH=osp.join(REPO, 'tests', 'plugins'), **(env or {}))
    proc = subprocess.run(
        [sys.executable, 'tools/reproduce_paper.py', '--dataset', 'ilsvrc', '--data-root',
         str(inputs / 'ILSVRC'), '--config', config, '--cam-model', 'ViT-S-32',
         '--eva-checkpoint', str(inputs / 'eva.pth'), '--clip-checkpoint',
         str(inputs / 'ViT-S-32.pt'), '--text-checkpoint', str(inputs / 'text.bin'),
         '--work-dir', str(work)], cwd=REPO, env=env, capture_output=True, text=True)
    if check:
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def _files(folder):
    return {name: open(osp.join(folder, name), 'rb').read()
            for name in sorted(os.listdir(folder))}


def test_tiny_ilsvrc_run_and_killed_training_resumes_to_the_same_table(inputs, whole,
                                                                        tmp_path):
    table = json.load(open(whole / 'results' / 'table.json'))
    metrics = json.load(open(whole / 'results' / 'test_metrics.json'))
    assert table['dataset'] == 'ilsvrc' and table['paper']['MaxBoxAcc'] == 75.6
    assert table['ours']['MaxBoxAcc'] == metrics['wsol/MaxBoxAcc']
    store = sorted(os.listdir(whole / 'cams' / 'train'))
    assert 'meta.json' in store

    killed_cfg = tmp_path / 'tiny_killed.py'  # the same config plus a hook that kills once
    killed_cfg.write_text(
        f"_base_ = ['{osp.join(REPO, CONFIG)}']\n"
        "custom_imports = dict(imports=['tedloc_mm', 'interrupt_hook'])\n"
        "custom_hooks = [dict(type='LeanCheckpointHook'), dict(type='InterruptAfterIterHook',"
        f" at_iter=4, once_file='{tmp_path / 'killed_once'}')]\n")
    work = tmp_path / 'killed'
    proc = _run(inputs, work, str(killed_cfg), check=False)
    assert proc.returncode == 1 and "step 'train'" in proc.stderr, proc.stderr[-2000:]
    assert (work / 'train' / 'last_checkpoint').exists()
    assert not (work / 'steps' / 'train.json').exists()
    proc = _run(inputs, work, str(killed_cfg))   # the same command again
    assert proc.stdout.count('(skipped:') == 3   # encoder, anchors, CAMs (no metadata step)
    assert '(resuming: ' in proc.stdout
    assert '--resume' in json.load(open(work / 'steps' / 'train.json'))['cmd']
    resumed = json.load(open(work / 'results' / 'test_metrics.json'))
    assert resumed == metrics
    assert sorted(f for f in os.listdir(work / 'train') if f.startswith('best_')) == sorted(
        f for f in os.listdir(whole / 'train') if f.startswith('best_'))


def test_killed_cam_generation_resumes_to_the_same_store_and_table(inputs, whole, tmp_path):
    from tedloc_mm.fileio.cam_store import CAMStore
    n = len(CAMStore(str(whole / 'cams' / 'train')))
    assert n >= 4
    work, once = tmp_path / 'killed', tmp_path / 'killed_once'
    # SIGKILL at the 3rd id line of the store: 2 CAMs committed, the 3rd row orphaned
    kill = dict(TEDLOC_TEST_KILL_CAMS=f'3:{once}')
    proc = _run(inputs, work, check=False, env=kill)
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "step 'cams'" in proc.stderr and f'exit code {-signal.SIGKILL}' in proc.stderr
    assert once.exists()
    store = work / 'cams' / 'train'
    assert len(CAMStore(str(store))) == 2
    side = json.load(open(store / 'meta.json'))['resolution']
    assert osp.getsize(store / 'part-0-of-1.u8') == 3 * side * side  # the orphan row
    assert not (work / 'steps' / 'cams.json').exists() and not (work / 'train').exists()

    proc = _run(inputs, work, env=kill)  # the same command again
    assert proc.stdout.count('(skipped:') == 2   # encoder, anchors; not the CAMs
    assert f'wrote {n - 2} CAM(s)' in proc.stdout  # the 2 stored before the kill kept
    assert (work / 'steps' / 'cams.json').exists()
    assert _files(store) == _files(whole / 'cams' / 'train')
    assert (json.load(open(work / 'results' / 'table.json')) ==
            json.load(open(whole / 'results' / 'table.json')))
