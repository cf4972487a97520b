"""tools/generate_cams.py killed with SIGKILL mid-run, then resumed, writes the same CAM
store as an uninterrupted run, byte for byte.

The interrupted run is a subprocess of the real tool (about 8 s of CPU, mostly imports)
started with the test-only start-up hook of ``tests/plugins`` (never part of the package;
``TEDLOC_TEST_KILL_CAMS``, :mod:`cam_kill`): the store writer's id-line writes are
counted, and at the fifth the process sends itself SIGKILL before writing it. So the kill lands at the worst moment of the store's write
protocol, after a CAM row is flushed and before its id line, in the middle of a batch,
at the same point on every run, however loaded the machine (no polling, no timing).
The uninterrupted run and the resumed one run in this process (one torch thread in both
processes, so that the kernels are the same).
"""
import importlib.util
import os
import os.path as osp
import signal
import subprocess
import sys

import cv2
import numpy as np
import torch
from mmengine.config import Config

import tedloc_mm  # noqa: F401
from tedloc_mm.fileio.cam_store import CAMStore

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
N_IMAGES, BATCH, RES = 12, 3, 16
CLASSIFIER = dict(model=dict(
    type='ImageClassifier',
    backbone=dict(type='ViTEVA02', arch=dict(embed_dims=32, num_layers=2, num_heads=2,
                                             feedforward_channels=64),
                  img_size=32, patch_size=8),
    neck=None,
    head=dict(type='LinearClsHead', num_classes=3, in_channels=32),
    data_preprocessor=dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
                           to_rgb=True)))

#: the test-only start-up hook that arms the kill in a tools/generate_cams.py process
#: (tests/plugins/sitecustomize.py -> cam_kill.py; the driver resume tests use it too)
PLUGINS = osp.join(REPO, 'tests', 'plugins')


def _make_split(root):
    os.makedirs(osp.join(root, 'metadata', 'train'))
    ids = [f'c{i % 3}/im{i:02d}.png' for i in range(N_IMAGES)]
    rng = np.random.default_rng(0)
    for i in ids:
        os.makedirs(osp.dirname(osp.join(root, i)), exist_ok=True)
        cv2.imwrite(osp.join(root, i), rng.integers(0, 255, (30, 40, 3), np.uint8))
    for name, lines in (('image_ids.txt', ids),
                        ('class_labels.txt', [f'{i},{k % 3}' for k, i in enumerate(ids)]),
                        ('image_sizes.txt', [f'{i},40,30' for i in ids])):
        with open(osp.join(root, 'metadata', 'train', name), 'w') as f:
            f.write(''.join(line + '\n' for line in lines))
    with open(osp.join(root, 'metadata', 'class_names.txt'), 'w') as f:
        f.write('a\nb\nc\n')
    return ids


def _tool():
    spec = importlib.util.spec_from_file_location('generate_cams_tool',
                                                  osp.join(REPO, 'tools', 'generate_cams.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _files(store):
    return {name: open(osp.join(store, name), 'rb').read()
            for name in sorted(os.listdir(store))}


def _count(store):
    """(complete id lines, complete CAM rows) of the store's one shard."""
    ids, data = (osp.join(store, 'part-0-of-1' + ext) for ext in ('.ids', '.u8'))
    n_ids = open(ids, 'rb').read().count(b'\n') if osp.isfile(ids) else 0
    n_rows = osp.getsize(data) // (RES * RES) if osp.isfile(data) else 0
    return n_ids, n_rows


def test_sigkilled_generate_cams_resumes_to_a_byte_identical_store(tmp_path):
    root = str(tmp_path / 'data')
    ids = _make_split(root)
    cfg_file = str(tmp_path / 'cls.py')
    Config(CLASSIFIER).dump(cfg_file)
    from tedloc_mm.pseudo_labels.classifier_cam import build_classifier
    torch.manual_seed(0)
    ckpt = str(tmp_path / 'cls.pth')
    torch.save(dict(state_dict=build_classifier(Config(CLASSIFIER), None).state_dict()), ckpt)
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1')

    def args(out):
        return ['classifier', cfg_file, ckpt, '--data-root', root, '--out', out,
                '--batch-size', str(BATCH), '--resolution', str(RES), '--num-workers', '0',
                '--no-progress']

    def run(out):
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            _tool().main(args(out))
        finally:
            torch.set_num_threads(threads)

    whole = str(tmp_path / 'whole')
    run(whole)

    killed = str(tmp_path / 'killed')
    # 4 CAMs committed, the 5th row flushed without its id line (items 3-5 form the
    # second batch: the kill is in the middle of it)
    once = str(tmp_path / 'killed_once')
    proc = subprocess.run([sys.executable, 'tools/generate_cams.py', *args(killed)], cwd=REPO,
                          env=dict(env, PYTHONPATH=os.pathsep.join([REPO, PLUGINS]),
                                   TEDLOC_TEST_KILL_CAMS=f'5:{once}'),
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=600)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-3000:]
    assert _count(killed) == (4, 5)  # an orphan row, as the kill left it
    assert len(CAMStore(killed)) == 4  # readers trust only rows with an id line

    run(killed)  # resume
    assert sorted(CAMStore(killed).ids()) == sorted(ids)
    want, got = _files(whole), _files(killed)
    assert sorted(got) == sorted(want) == ['meta.json', 'part-0-of-1.ids', 'part-0-of-1.u8']
    for name in want:
        assert got[name] == want[name], name


def test_a_resumed_run_recomputes_the_whole_interrupted_batch():
    from tedloc_mm.pseudo_labels.generation import pending_batches
    items = [(f'i{k}', f'/p/i{k}', 0) for k in range(8)]
    # batches of 3: [0 1 2] [3 4 5] [6 7]; 0-3 stored: the 2nd batch is redone whole
    got = pending_batches(items, {'i0', 'i1', 'i2', 'i3'}, 3)
    assert [it[0] for it in got] == ['i3', 'i4', 'i5', 'i6', 'i7']
    assert pending_batches(items, {it[0] for it in items}, 3) == []


def test_writer_never_pads_ids_whose_row_bytes_are_missing(tmp_path):
    """More id lines than rows (the data file lost its tail, e.g. a power loss):
    the writer keeps only ids with their bytes, instead of padding zero rows."""
    from tedloc_mm.fileio.cam_store import CAMStoreWriter
    root = str(tmp_path / 'store')
    cams = [np.random.default_rng(k).random((8, 8)) for k in range(3)]
    with CAMStoreWriter(root, resolution=8) as w:
        for k, cam in enumerate(cams):
            w.write(f'i{k}', cam)
    data = osp.join(root, 'part-0.u8')
    with open(data, 'r+b') as f:
        f.truncate(2 * 64 + 10)  # row 2 is partial, its id line complete
    with CAMStoreWriter(root, resolution=8) as w:
        assert w.num_rows == 2
    store = CAMStore(root)
    assert sorted(store.ids()) == ['i0', 'i1']
    assert osp.getsize(data) == 2 * 64
    assert open(osp.join(root, 'part-0.ids'), 'rb').read() == b'i0\ni1\n'
