"""LeanCheckpointHook: checkpoints without the frozen backbone, restored on load."""
import copy
import importlib.util
import logging
import os.path as osp
from types import SimpleNamespace

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner
from mmengine.runner.checkpoint import CheckpointLoader
from mmengine.runner.checkpoint import weights_to_cpu

import tedloc_mm  # noqa: F401
from tedloc_mm.apis import init_localizer
from tedloc_mm.embedded_benchmarks.gliders import generate_synthetic_wsol
from tedloc_mm.engine import CheckpointWeightsError, LeanCheckpointHook, restore_frozen_weights
from tedloc_mm.registry import MODELS
from tedloc_mm.fileio import save_anchor_file
from tedloc_mm.tool_errors import UserError

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _eva_file(path, seed):
    """A tiny EVA-02 backbone file (bare MMPretrain keys) with seeded random weights."""
    cfg = Config.fromfile(osp.join(ROOT, 'tests/data/configs/tiny_tedloc.py'))
    torch.manual_seed(seed)
    vit = MODELS.build(cfg.model.backbone).vit
    torch.save(vit.state_dict(), path)
    return path


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp('lean')
    anchors = str(d / 'anchors.pth')
    torch.manual_seed(0)
    save_anchor_file(anchors, torch.randn(3, 32), ['a', 'b', 'c'], 'tiny', 'random-init',
                     ['{}'])
    data = str(d / 'synthetic')
    generate_synthetic_wsol(data, seed=5, num_classes=3, num_train=0, num_val=2,
                            num_test=0, image_size=64)
    cfg = Config.fromfile(osp.join(ROOT, 'tests/data/configs/tiny_tedloc.py'))
    cfg.model.head.anchor_file = anchors
    cfg.model.backbone.checkpoint = _eva_file(str(d / 'eva.pth'), seed=1)
    cfg.val_dataloader.dataset.data_root = data
    cfg.test_dataloader = cfg.val_dataloader
    cfg.custom_hooks = []
    model = init_localizer(cfg, None)          # backbone from eva.pth, decoder at init
    with torch.no_grad():                      # a trained-looking g: not the init values
        model.head.fg_classifier.weight.mul_(-7)
    full = dict(meta=dict(dataset_meta=dict(classes=['a', 'b', 'c'])),
                state_dict=weights_to_cpu(model.state_dict()))
    lean = copy.deepcopy(full)
    runner = SimpleNamespace(model=model, logger=logging.getLogger('lean-test'))
    LeanCheckpointHook().before_save_checkpoint(runner, lean)
    paths = dict(full=str(d / 'full.pth'), lean=str(d / 'lean.pth'))
    torch.save(full, paths['full'])
    torch.save(lean, paths['lean'])
    return dict(dir=d, cfg=cfg, model=model, full=full, lean=lean, paths=paths)


def test_the_lean_checkpoint_has_no_backbone_and_records_its_source(setup):
    full, lean = setup['full']['state_dict'], setup['lean']['state_dict']
    backbone_keys = [k for k in full if k.startswith('backbone.')]
    assert backbone_keys and not any(k.startswith('backbone.') for k in lean)
    assert set(lean) == set(full) - set(backbone_keys)       # nothing else dropped
    record = setup['lean']['meta']['lean_checkpoint']
    assert record['prefix'] == 'backbone.' and record['num_tensors'] == len(backbone_keys)
    assert record['source'] == setup['cfg'].model.backbone.checkpoint
    assert setup['lean']['meta']['dataset_meta'] == setup['full']['meta']['dataset_meta']
    # the tiny backbone is most of the tiny model, as EVA-L is of the real one
    assert osp.getsize(setup['paths']['lean']) < 0.5 * osp.getsize(setup['paths']['full'])


def test_restore_gives_back_every_tensor(setup):
    # the loader of load_from / --resume / tools/test.py (weights_only=True)
    loaded = CheckpointLoader.load_checkpoint(setup['paths']['lean'], map_location='cpu')
    torch.manual_seed(123)                      # a fresh model with another random backbone
    cfg = copy.deepcopy(setup['cfg'])
    cfg.model.backbone.checkpoint = None
    fresh = init_localizer(cfg, None)
    fresh.backbone.checkpoint = setup['cfg'].model.backbone.checkpoint
    assert restore_frozen_weights(fresh, loaded)
    fresh.load_state_dict(loaded['state_dict'], strict=True)
    for k, v in setup['full']['state_dict'].items():
        torch.testing.assert_close(fresh.state_dict()[k], v, rtol=0, atol=0, msg=k)
    # a full checkpoint is left alone
    assert not restore_frozen_weights(fresh, copy.deepcopy(setup['full']))


def test_runner_test_with_the_hook_equals_the_full_checkpoint(setup, tmp_path):
    """Runner.test loads without init_weights: only the hook brings the backbone."""
    def run(ckpt, hooks, name):
        cfg = copy.deepcopy(setup['cfg'])
        cfg.custom_hooks = hooks
        cfg.load_from = ckpt
        cfg.work_dir = str(tmp_path / name)
        cfg.experiment_name = f'lean_{name}'
        return Runner.from_cfg(cfg).test()

    full = run(setup['paths']['full'], [], 'full')
    lean = run(setup['paths']['lean'], [dict(type='LeanCheckpointHook')], 'lean')
    assert lean == full
    # without the hook the backbone would stay at its random construction: the
    # configs' weights check (default_hooks.checkpoint_weights) refuses the run
    with pytest.raises(CheckpointWeightsError, match='LeanCheckpointHook'):
        run(setup['paths']['lean'], [], 'unhooked')


def test_init_localizer_reads_a_lean_checkpoint(setup):
    model = init_localizer(setup['cfg'], setup['paths']['lean'])
    for k, v in setup['full']['state_dict'].items():
        torch.testing.assert_close(model.state_dict()[k], v, rtol=0, atol=0, msg=k)
    assert model.dataset_meta['classes'] == ['a', 'b', 'c']


def test_missing_or_different_backbone_file_is_refused(setup):
    cfg = copy.deepcopy(setup['cfg'])
    cfg.model.backbone.checkpoint = str(setup['dir'] / 'nowhere.pth')
    with pytest.raises(FileNotFoundError, match='model.backbone.checkpoint'):
        init_localizer(cfg, setup['paths']['lean'])
    cfg.model.backbone.checkpoint = _eva_file(str(setup['dir'] / 'other_eva.pth'), seed=2)
    with pytest.raises(ValueError, match='not those this checkpoint was saved with'):
        init_localizer(cfg, setup['paths']['lean'])


def test_a_trainable_or_fileless_backbone_is_never_left_out(setup):
    model = setup['model']
    runner = SimpleNamespace(model=model, logger=logging.getLogger('lean-test'))
    checkpoint = dict(meta={}, state_dict=weights_to_cpu(model.state_dict()))
    source = model.backbone.checkpoint
    try:
        model.backbone.checkpoint = None
        with pytest.raises(ValueError, match='no checkpoint file'):
            LeanCheckpointHook().before_save_checkpoint(runner, copy.deepcopy(checkpoint))
        model.backbone.checkpoint = source
        next(model.backbone.parameters()).requires_grad_(True)
        with pytest.raises(ValueError, match='trainable'):
            LeanCheckpointHook().before_save_checkpoint(runner, copy.deepcopy(checkpoint))
    finally:
        model.backbone.checkpoint = source
        next(model.backbone.parameters()).requires_grad_(False)


def test_converter_shrinks_a_full_checkpoint(setup, tmp_path):
    spec = importlib.util.spec_from_file_location(
        'lean_checkpoint_tool', osp.join(ROOT, 'tools/model_converters/lean_checkpoint.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    convert = tool.main
    cfg_file = str(tmp_path / 'cfg.py')
    setup['cfg'].dump(cfg_file)
    out = str(tmp_path / 'converted.pth')
    convert([cfg_file, setup['paths']['full'], out])
    converted = CheckpointLoader.load_checkpoint(out, map_location='cpu')
    assert set(converted['state_dict']) == set(setup['lean']['state_dict'])
    assert converted['meta']['lean_checkpoint'] == setup['lean']['meta']['lean_checkpoint']
    with pytest.raises(UserError, match='already a lean checkpoint'):
        convert([cfg_file, out, str(tmp_path / 'again.pth')])
    # a backbone that is not the configured file's is refused
    other = copy.deepcopy(setup['full'])
    key = next(k for k in other['state_dict'] if k.startswith('backbone.'))
    other['state_dict'][key] = other['state_dict'][key] + 1
    torch.save(other, str(tmp_path / 'other.pth'))
    with pytest.raises(UserError, match='differs from'):
        convert([cfg_file, str(tmp_path / 'other.pth'), str(tmp_path / 'x.pth')])
