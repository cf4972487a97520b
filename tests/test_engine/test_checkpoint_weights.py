"""A checkpoint without the model's weights is refused (issue 16, section 2).

A weightless file (empty state_dict), another model's checkpoint, one with other shapes
or a part missing: tools/test.py, tools/infer.py, init_localizer and WSOLInferencer
stop with an error naming the file and the missing groups, instead of evaluating random
weights. Extra keys: a warning that counts them. Lean checkpoints pass once their
frozen encoder is restored; tools/test.py with checkpoint ``none`` is unaffected.
"""
import copy
import importlib.util
import logging
import os
import os.path as osp
import re
import subprocess

import pytest
import torch
from mmengine.config import Config

import tedloc_mm  # noqa: F401
from checkpoint_payloads import ROOT
from tedloc_mm.apis import WSOLInferencer, init_localizer
from tedloc_mm.engine import (CheckpointWeightsError, LeanCheckpointHook,
                              check_checkpoint_weights)
from tedloc_mm.fileio import save_anchor_file

TINY = osp.join(ROOT, 'tests/data/configs/tiny_tedloc.py')


def _tool(path, name):
    spec = importlib.util.spec_from_file_location(name, osp.join(ROOT, path))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    from tedloc_mm.embedded_benchmarks.gliders import generate_synthetic_wsol
    from tedloc_mm.registry import MODELS
    d = tmp_path_factory.mktemp('weights')
    anchors = str(d / 'anchors.pth')
    torch.manual_seed(0)
    save_anchor_file(anchors, torch.randn(3, 32), ['a', 'b', 'c'], 'tiny', 'random-init',
                     ['{}'])
    data = str(d / 'data')
    generate_synthetic_wsol(data, seed=5, num_classes=3, num_train=0, num_val=1,
                            num_test=0, image_size=64)
    # the frozen encoder's own file, for the lean checkpoint
    cfg = Config.fromfile(TINY)
    torch.manual_seed(1)
    eva = str(d / 'eva.pth')
    torch.save(MODELS.build(cfg.model.backbone).vit.state_dict(), eva)
    cfg.model.head.anchor_file = anchors
    cfg.model.backbone.checkpoint = eva
    cfg.val_dataloader.dataset.data_root = data
    cfg.test_dataloader = cfg.val_dataloader
    cfg.custom_hooks = []
    cfg_file = str(d / 'cfg.py')
    cfg.dump(cfg_file)
    lean_cfg = copy.deepcopy(cfg)
    lean_cfg.custom_hooks = [dict(type='LeanCheckpointHook')]
    lean_cfg_file = str(d / 'cfg_lean.py')
    lean_cfg.dump(lean_cfg_file)
    model = init_localizer(cfg, None)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    files = dict(full=str(d / 'full.pth'), empty=str(d / 'empty.pth'),
                 foreign=str(d / 'foreign.pth'), lean=str(d / 'lean.pth'))
    torch.save(dict(state_dict=state, meta=dict()), files['full'])
    torch.save(dict(state_dict={}, meta=dict()), files['empty'])
    # another model's checkpoint: the tiny classifier of the tool tests
    from tedloc_mm.pseudo_labels.classifier_cam import build_classifier
    classifier = build_classifier(osp.join(ROOT, 'tests/data/configs/tiny_classifier.py'), None)
    torch.save(dict(state_dict=classifier.state_dict()), files['foreign'])
    lean = dict(state_dict=dict(state), meta=dict())
    LeanCheckpointHook().before_save_checkpoint(type('R', (), dict(model=model))(), lean)
    torch.save(lean, files['lean'])
    image = osp.join(data, open(osp.join(data, 'metadata/val/image_ids.txt')).readline().strip())
    return dict(cfg=cfg, cfg_file=cfg_file, lean_cfg_file=lean_cfg_file, model=model,
                state=state, files=files, image=image, data=data)


def _count(state, prefix):
    return sum(k.startswith(prefix) for k in state)


def test_an_empty_state_dict_names_every_group(tiny):
    state = tiny['state']
    with pytest.raises(CheckpointWeightsError) as e:
        check_checkpoint_weights(tiny['model'], dict(state_dict={}), 'x/empty.pth')
    msg = str(e.value)
    assert msg.startswith('checkpoint x/empty.pth does not hold the weights of this TeDLoc')
    n_backbone, n_neck, n_head = (_count(state, p) for p in ('backbone.', 'neck.', 'head.'))
    assert (n_backbone, n_neck, n_head) == (38, 10, 3)  # the tiny config's modules
    assert f"{len(state)} of the model's {len(state)} tensors are missing" in msg
    assert f'backbone: {n_backbone}/{n_backbone} tensors (frozen)' in msg
    assert f'neck: {n_neck}/{n_neck} tensors,' in msg
    assert f'head: {n_head}/{n_head} tensors' in msg and 'head: 3/3 tensors (frozen)' not in msg


def test_a_missing_part_is_named_at_the_second_level(tiny):
    state = {k: v for k, v in tiny['state'].items() if not k.startswith('head.fg_classifier')}
    with pytest.raises(CheckpointWeightsError,
                       match=r"2 of the model's 51 tensors are missing: "
                             r'head\.fg_classifier: 2/2 tensors\.$'):
        check_checkpoint_weights(tiny['model'], state, 'x.pth')  # a plain state dict


def test_another_models_checkpoint_and_other_shapes(tiny):
    foreign = torch.load(tiny['files']['foreign'])
    with pytest.raises(CheckpointWeightsError) as e:
        check_checkpoint_weights(tiny['model'], foreign, 'cls.pth')
    n_foreign = len(foreign['state_dict'])
    assert f'{n_foreign} of its keys are not in the model' in str(e.value)
    assert 'a checkpoint of another model' in str(e.value)
    # the same keys, anchors of another width (a model built for other text embeddings)
    state = dict(tiny['state'], **{'head.anchors': torch.zeros(3, 16)})
    with pytest.raises(CheckpointWeightsError,
                       match=re.escape('1 have another shape in the file: head.anchors '
                                       '(3, 16) (model (3, 32))')):
        check_checkpoint_weights(tiny['model'], dict(state_dict=state), 'x.pth')


def test_extra_keys_pass_with_a_counted_warning_and_ddp_prefixes_are_read(tiny, caplog):
    state = {'module.' + k: v for k, v in tiny['state'].items()}
    state.update({f'aux.w{i}': torch.zeros(1) for i in range(3)})
    logger = logging.getLogger('checkpoint_weights_test')
    with caplog.at_level(logging.WARNING, logger='checkpoint_weights_test'):
        out = check_checkpoint_weights(tiny['model'], dict(state_dict=state), 'x.pth',
                                       logger=logger)
    assert sorted(out['unexpected']) == ['aux.w0', 'aux.w1', 'aux.w2']
    assert 'checkpoint x.pth: 3 keys the model does not have are ignored' in caplog.text


def test_extra_weights_in_a_trained_module_mean_another_architecture(tiny):
    """A decoder trained with one more stage (out_stride 4 where the model has 8):
    every tensor of the model is in the file with its shape, but the file's extra
    stage would be dropped: refused, naming it. Extra frozen-encoder keys still pass."""
    extra = {f'neck.stages.9.conv.{n}': torch.zeros(2) for n in ('weight', 'bias')}
    state = dict(tiny['state'], **extra)
    with pytest.raises(CheckpointWeightsError,
                       match=r'x\.pth was trained with another architecture of this TeDLoc: '
                             r'.* trained module\(s\) neck\.stages\.9 \(2 tensors\); .*'
                             r'model\.neck\.out_stride'):
        check_checkpoint_weights(tiny['model'], dict(state_dict=state), 'x.pth')
    frozen_extra = dict(tiny['state'], **{'backbone.unused.w': torch.zeros(1)})
    out = check_checkpoint_weights(tiny['model'], dict(state_dict=frozen_extra), 'x.pth')
    assert out['unexpected'] == ['backbone.unused.w']


def test_a_lean_checkpoint_without_its_hook_is_named(tiny):
    lean = torch.load(tiny['files']['lean'])
    with pytest.raises(CheckpointWeightsError, match='it is a lean checkpoint .*'
                       'LeanCheckpointHook'):
        check_checkpoint_weights(tiny['model'], lean, tiny['files']['lean'])


# ------------------------------------------------------------------ the three paths
def test_tools_test_refuses_weightless_and_foreign_files(tiny, tmp_path, python_exe):
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS='1')
    procs = {name: subprocess.Popen(
        [python_exe, 'tools/test.py', tiny['cfg_file'], tiny['files'][name], '--work-dir',
         str(tmp_path / name)], cwd=ROOT, env=env, text=True, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE) for name in ('empty', 'foreign')}
    for name, proc in procs.items():
        _, err = proc.communicate(timeout=600)
        assert proc.returncode != 0, err[-2000:]
        want = (f'CheckpointWeightsError: checkpoint {tiny["files"][name]} does not hold '
                'the weights of this TeDLoc')
        assert want in err, err[-3000:]
        assert 'neck: 10/10 tensors' in err
        assert 'wsol/MaxBoxAcc' not in err  # nothing was evaluated


def test_tools_test_accepts_full_and_lean_checkpoints(tiny, tmp_path):
    """In process: the check runs after LeanCheckpointHook restored the encoder (its
    priority is lower), so a lean checkpoint passes and scores as the full one."""
    test_tool = _tool('tools/test.py', 'weights_test_tool')
    full = test_tool.main([tiny['cfg_file'], tiny['files']['full'], '--work-dir',
                           str(tmp_path / 'f'), '--cfg-options', 'experiment_name=w_full'])
    lean = test_tool.main([tiny['lean_cfg_file'], tiny['files']['lean'], '--work-dir',
                           str(tmp_path / 'l'), '--cfg-options', 'experiment_name=w_lean'])
    assert lean == full and 0 <= full['wsol/MaxBoxAccV2'] <= 100
    with pytest.raises(CheckpointWeightsError, match='lean checkpoint'):
        test_tool.main([tiny['cfg_file'], tiny['files']['lean'], '--work-dir',
                        str(tmp_path / 'l2'), '--cfg-options', 'experiment_name=w_lean2'])


def test_infer_and_the_api_refuse_weightless_and_foreign_files(tiny, tmp_path):
    infer = _tool('tools/infer.py', 'weights_infer_tool')
    for name in ('empty', 'foreign'):
        path = tiny['files'][name]
        want = re.escape(f'checkpoint {path} does not hold the weights of this TeDLoc')
        with pytest.raises(CheckpointWeightsError, match=want):
            infer.main([tiny['cfg_file'], path, tiny['image'], '--out-dir',
                        str(tmp_path / name), '--no-overlay'])
        with pytest.raises(CheckpointWeightsError, match=want + '.*neck: 10/10 tensors'):
            init_localizer(tiny['cfg'], path)
        with pytest.raises(CheckpointWeightsError, match=want):
            WSOLInferencer(tiny['cfg_file'], path)
    assert not osp.exists(tmp_path / 'empty' / 'results.json')


def test_the_api_loads_a_checkpoint_with_extra_keys(tiny, tmp_path):
    ckpt = dict(state_dict=dict(copy.deepcopy(tiny['state']), **{'ema.w': torch.ones(1)}))
    path = str(tmp_path / 'extra.pth')
    torch.save(ckpt, path)
    model = init_localizer(tiny['cfg'], path)
    for k, v in tiny['state'].items():
        assert torch.equal(model.state_dict()[k], v), k
