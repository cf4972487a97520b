"""TeD-Loc training through MMEngine's Runner, as ``tools/train.py`` runs it, in seconds:
tests/data/configs/tiny_tedloc_train.py (64 px, a random frozen EVA-02 read from a file)
on 12 synthetic images, pseudo-labels from a CAM store written here (each image's GT
mask, blurred), LoadCAM -> PseudoLabelSampler -> the three losses -> SGD, validation on
the same images with ``save_best``, lean checkpoints (LeanCheckpointHook).

What users depend on: the loss falls, the trained model localizes its own training
images better than the same model untrained, the best checkpoint is the best
validation's and tests to its numbers, and training resumed from a lean checkpoint
ends on the weights of an uninterrupted run.
"""
import importlib.util
import json
import os
import os.path as osp
import runpy
import sys

import cv2
import numpy as np
import pytest
import torch

import tedloc_mm  # noqa: F401
from tedloc_mm.embedded_benchmarks.gliders import generate_synthetic_wsol
from tedloc_mm.fileio.wsol_metadata import read_wsol_split
from tedloc_mm.fileio.cam_store import CAMStoreWriter
from tedloc_mm.registry import MODELS
from tedloc_mm.fileio import save_anchor_file

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(ROOT, 'tests/data/configs/tiny_tedloc_train.py')


def _tool(name):
    spec = importlib.util.spec_from_file_location(f'{name}_tool',
                                                  osp.join(ROOT, 'tools', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _one_thread(fn, *args):
    """Run ``fn`` on one torch thread (fast and repeatable on a shared 2-core machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return fn(*args)
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    """Data (12 images of 3 classes, with masks), the CAM store, anchors, backbone."""
    from mmengine.config import Config
    d = tmp_path_factory.mktemp('tedloc_training')
    data = str(d / 'data')
    generate_synthetic_wsol(data, seed=5, num_classes=3, num_train=0, num_val=4, num_test=0,
                            image_size=64)
    cams = str(d / 'cams')
    with CAMStoreWriter(cams, resolution=32) as writer:
        for info in read_wsol_split(osp.join(data, 'metadata', 'val')):
            mask = np.any([cv2.imread(osp.join(data, p), cv2.IMREAD_GRAYSCALE) > 0
                           for p in info['mask_paths']], 0).astype(np.float32)
            writer.write(info['img_id'], cv2.GaussianBlur(mask, (0, 0), 3))
    anchors = str(d / 'anchors.pth')
    save_anchor_file(anchors, torch.randn(3, 32, generator=torch.Generator().manual_seed(0)),
                     ['a', 'b', 'c'], 'tiny', 'random-init', ['{}'])
    eva = str(d / 'eva.pth')
    torch.manual_seed(1)    # the backbone file's random weights
    torch.save(MODELS.build(Config.fromfile(CONFIG).model.backbone).vit.state_dict(), eva)
    options = [f'{loader}.dataset.data_root={data}'
               for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader')]
    options += [f'train_dataloader.dataset.cam_store={cams}',
                f'model.head.anchor_file={anchors}', f'model.backbone.checkpoint={eva}']
    return dict(dir=d, options=options)


def _train(files, name, *args):
    work = str(files['dir'] / name)
    _one_thread(_tool('train').main, [CONFIG, '--work-dir', work, *args, '--cfg-options',
                                      *files['options'], f'experiment_name=train_{name}'])
    return work


def _scalars(work):
    path = [osp.join(r, f) for r, _, fs in os.walk(work) for f in fs if f == 'scalars.json']
    assert len(path) == 1, path
    rows = [json.loads(line) for line in open(path[0])]
    losses = [r['loss'] for r in rows if 'loss' in r]
    vals = [{k: v for k, v in r.items() if k.startswith('wsol/')}
            for r in rows if 'wsol/PxAP' in r]
    return losses, vals


def _state(path):
    return torch.load(path, map_location='cpu', weights_only=False)


@pytest.fixture(scope='module')
def trained(files):
    """One uninterrupted run: 30 iterations, validation at 15 and 30."""
    return _train(files, 'whole')


@pytest.fixture(scope='module')
def untrained_metrics(files):
    """Validation of the model the run starts from (same seed, same construction,
    init_weights: backbone from its file, decoder and g at initialisation)."""
    from mmengine.runner import Runner
    tool = _tool('train')
    cfg = tool.make_config(tool.parse_args([
        CONFIG, '--work-dir', str(files['dir'] / 'untrained'), '--cfg-options',
        *files['options'], 'experiment_name=train_untrained']))
    cfg.default_hooks.checkpoint = None
    cfg.custom_hooks = []

    def validate():
        runner = Runner.from_cfg(cfg)
        runner.model.init_weights()
        return runner.val()

    return _one_thread(validate)


def test_training_lowers_the_loss_and_localizes_better_than_untrained(trained,
                                                                      untrained_metrics):
    losses, vals = _scalars(trained)
    assert len(losses) == 30 and len(vals) == 2
    first, last = np.mean(losses[:5]), np.mean(losses[-5:])
    assert last < 0.7 * first, (first, last)   # measured: 2.98 -> 1.45
    after = vals[-1]
    # on the images it trained on (measured: PxAP 16.2 -> 47.4, MaxBoxAccV2 30.6 -> 50.0)
    assert after['wsol/PxAP'] > untrained_metrics['wsol/PxAP'] + 15, (after, untrained_metrics)
    assert after['wsol/MaxBoxAccV2'] > untrained_metrics['wsol/MaxBoxAccV2'] + 10, \
        (after, untrained_metrics)


def test_checkpoints_are_lean_and_the_best_is_the_best_validation(trained):
    _, vals = _scalars(trained)
    best_iter = (15, 30)[int(np.argmax([v['wsol/PxAP'] for v in vals]))]
    saved = sorted(f for f in os.listdir(trained) if f.endswith('.pth'))
    assert saved == sorted(['iter_15.pth', 'iter_30.pth', f'best_wsol_PxAP_iter_{best_iter}.pth'])
    for name in saved:
        ckpt = _state(osp.join(trained, name))
        assert not any(k.startswith('backbone.') for k in ckpt['state_dict']), name
        assert ckpt['meta']['lean_checkpoint']['prefix'] == 'backbone.', name
        assert set(ckpt['state_dict']) >= {'head.fg_classifier.weight', 'head.anchors'}
    best = _state(osp.join(trained, f'best_wsol_PxAP_iter_{best_iter}.pth'))
    same = _state(osp.join(trained, f'iter_{best_iter}.pth'))
    for k, v in same['state_dict'].items():
        assert torch.equal(best['state_dict'][k], v), k


def test_the_best_lean_checkpoint_tests_to_its_validation_numbers(trained, files, tmp_path,
                                                                  monkeypatch):
    """tools/test.py on the best checkpoint (the test split is the val split here):
    the frozen backbone comes back from its file, the numbers are the validation's."""
    _, vals = _scalars(trained)
    best_val = max(vals, key=lambda v: v['wsol/PxAP'])
    best = [f for f in os.listdir(trained) if f.startswith('best_')][0]
    out = str(tmp_path / 'metrics.json')
    monkeypatch.setattr(sys, 'argv', [
        'tools/test.py', CONFIG, osp.join(trained, best), '--work-dir', str(tmp_path),
        '--out', out, '--cfg-options', *files['options'], 'test_dataloader.dataset.split=val',
        'experiment_name=test_best'])
    with pytest.raises(SystemExit) as done:  # the tool's exit status: 0 on success
        _one_thread(runpy.run_path, osp.join(ROOT, 'tools', 'test.py'), None, '__main__')
    assert done.value.code == 0
    assert json.load(open(out)) == pytest.approx(best_val, abs=1e-9)


def test_resume_from_a_lean_checkpoint_reaches_the_uninterrupted_weights(trained, files):
    """Resumed from iter_15.pth (lean) into a fresh work dir, the run ends at
    iteration 30 on exactly the weights of the uninterrupted run: optimizer momentum,
    iteration count and the data order (the Runner replays the sampler, and with it
    the pseudo-label draws) all came back."""
    resumed = _train(files, 'resumed', '--resume', osp.join(trained, 'iter_15.pth'))
    assert not osp.isfile(osp.join(resumed, 'iter_15.pth'))     # it started at 15
    a = _state(osp.join(trained, 'iter_30.pth'))
    b = _state(osp.join(resumed, 'iter_30.pth'))
    assert a['meta']['iter'] == b['meta']['iter'] == 30
    assert a['state_dict'].keys() == b['state_dict'].keys()
    for k in a['state_dict']:
        assert torch.equal(a['state_dict'][k], b['state_dict'][k]), k
    # the comparison is not between two copies of the checkpoint it resumed from
    start = _state(osp.join(trained, 'iter_15.pth'))['state_dict']
    assert any(not torch.equal(start[k], a['state_dict'][k]) for k in start)
    losses_whole, _ = _scalars(trained)
    losses_resumed, _ = _scalars(resumed)
    assert losses_resumed == losses_whole[15:]


def test_the_authors_sampling_trains(files):
    """The tiny config with the sampler of configs/ablations/tedloc_eva-l_authors-sampling_cub.py
    (full resolution, 1 + 1 pixels grown to 3 x 3, CAM-weighted FG, BG from the image):
    a few Runner iterations give finite losses with pixel terms, and the weights move."""
    from mmengine.config import Config
    from mmengine.runner import Runner
    authors = Config.fromfile(osp.join(
        ROOT, 'configs/ablations/tedloc_eva-l_authors-sampling_cub.py')).authors_sampler
    cfg = Config.fromfile(CONFIG)
    cfg.merge_from_dict(dict(opt.split('=', 1) for opt in files['options']))
    pipeline = cfg.train_dataloader.dataset.pipeline
    at = [i for i, t in enumerate(pipeline) if t.type == 'PseudoLabelSampler']
    assert len(at) == 1
    pipeline[at[0]] = dict(authors)
    cfg.train_dataloader.dataset.pipeline = pipeline
    cfg.train_cfg = dict(by_epoch=False, max_iters=4, val_interval=100)
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    cfg.param_scheduler = None
    cfg.default_hooks.checkpoint = None
    cfg.custom_hooks = []
    cfg.work_dir = str(files['dir'] / 'authors_sampling')
    cfg.experiment_name = 'train_authors_sampling'
    runner = Runner.from_cfg(cfg)
    before = {k: v.clone() for k, v in runner.model.state_dict().items()}
    batch = next(iter(runner.build_dataloader(cfg.train_dataloader)))
    labels = [s.pseudo_label_map for s in batch['data_samples']]
    for m in labels:   # on the 64 px input: one FG and one BG pixel, each grown to <= 3 x 3
        assert tuple(m.shape) == (64, 64)
        assert 1 <= int((m == 1).sum()) <= 9 and 1 <= int((m == 0).sum()) <= 9
    optim = runner.build_optim_wrapper(cfg.optim_wrapper)
    losses = runner.model.train_step(batch, optim)
    assert all(torch.isfinite(v) for v in losses.values())
    assert float(losses['loss_patch']) > 0 and float(losses['loss_kd']) > 0
    after = runner.model.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before
               if k.startswith('neck') or k.startswith('head.fg'))
