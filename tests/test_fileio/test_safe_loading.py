"""Loading a checkpoint never runs code from it (issue 16, section 1).

Files whose pickle would write a marker file (``exec``, ``os.system``, a tampered Runner
checkpoint, the legacy format, protocol 4, ``getattr`` beyond what the Runner pickles)
are refused by the loader, by tools/test.py, tools/infer.py, tools/train.py --resume,
a backbone ``checkpoint=``, the inference API and the converters: an error naming the
file and the refused globals, and no marker. The one opt-in (per file) loads them: the
marker appears. Importing tedloc_mm leaves torch's allowlist as it was.
"""
import importlib.util
import json
import os
import os.path as osp
import subprocess

import pytest
import torch
from mmengine.config import Config
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader

import tedloc_mm  # noqa: F401
from checkpoint_payloads import (CLASSIFIER, ROOT, TouchesMarker, WritesMarker, legacy_bytes,
                                 make_folder_dataset, train_tiny_classifier, with_payload)
from tedloc_mm.fileio.checkpoint import UnsafeCheckpointError
from tedloc_mm.fileio.checkpoint import TRUST_ENV, trusted_checkpoints

TINY = osp.join(ROOT, 'tests/data/configs/tiny_tedloc.py')


def _tool(path, name):
    spec = importlib.util.spec_from_file_location(name, osp.join(ROOT, path))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def load(path):
    return CheckpointLoader.load_checkpoint(str(path), map_location='cpu')


def _assert_refused(err, path, *names):
    text = str(err)
    assert text.startswith(f'cannot load checkpoint {path}: refused'), text
    for name in names:
        assert name in text, (name, text)
    assert f'{TRUST_ENV}={path}' in text and '--trust-checkpoint' in text


@pytest.fixture(scope='module')
def runner_ckpt(tmp_path_factory):
    """A Runner checkpoint of tiny_classifier (iter_4.pth) and its data folder."""
    d = tmp_path_factory.mktemp('runner')
    data = make_folder_dataset(str(d / 'data'))
    work = train_tiny_classifier(str(d / 'work'), data)
    return osp.join(work, 'iter_4.pth'), data


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    """tiny_tedloc (config file, anchors, synthetic val data) and a full checkpoint."""
    from tedloc_mm.apis import init_localizer
    from tedloc_mm.embedded_benchmarks.gliders import generate_synthetic_wsol
    from tedloc_mm.fileio import save_anchor_file
    d = tmp_path_factory.mktemp('tiny')
    anchors = str(d / 'anchors.pth')
    torch.manual_seed(0)
    save_anchor_file(anchors, torch.randn(3, 32), ['a', 'b', 'c'], 'tiny', 'random-init',
                     ['{}'])
    data = str(d / 'data')
    generate_synthetic_wsol(data, seed=5, num_classes=3, num_train=0, num_val=1,
                            num_test=0, image_size=64)
    cfg = Config.fromfile(TINY)
    cfg.model.head.anchor_file = anchors
    cfg.val_dataloader.dataset.data_root = data
    cfg.test_dataloader = cfg.val_dataloader
    cfg.custom_hooks = []
    cfg_file = str(d / 'cfg.py')
    cfg.dump(cfg_file)
    state = init_localizer(cfg, None).state_dict()
    ckpt = str(d / 'tiny.pth')
    torch.save(dict(state_dict=state), ckpt)
    image = osp.join(data, open(osp.join(data, 'metadata/val/image_ids.txt')).readline().strip())
    return dict(dir=d, cfg=cfg, cfg_file=cfg_file, ckpt=ckpt, state=state, image=image)


# ------------------------------------------------------------------ torch's allowlist
IMPORT_PROBE = r"""
import json, sys
import torch
# MMEngine's Runner modules first: importing torch.distributed makes torch register its
# own DTensor / NJT types, which are not ours
from mmengine.runner.checkpoint import CheckpointLoader
def entries():
    return sorted(repr(g) for g in torch.serialization.get_safe_globals())
before = entries()
import tedloc_mm, tedloc, tedloc.registry  # our loader is registered now (its hook)
assert CheckpointLoader._schemes[''].__module__ == 'tedloc_mm.fileio.checkpoint'
after_import = entries()
ckpt = CheckpointLoader.load_checkpoint(sys.argv[1], map_location='cpu')
after_load = entries()
try:
    torch.load(sys.argv[1], map_location='cpu')   # torch's own default, after the import
    default_refuses = False
except Exception:
    default_refuses = True
print(json.dumps(dict(before=before, after_import=after_import, after_load=after_load,
                      loaded='message_hub' in ckpt, default_refuses=default_refuses)))
"""


def test_importing_tedloc_mm_leaves_torchs_allowlist_unchanged(runner_ckpt, python_exe):
    """A fresh process: `import tedloc_mm, tedloc` (its loader registered in MMEngine)
    leaves torch.serialization.get_safe_globals() as it was (torch itself registers its
    DTensor / NJT types when MMEngine imports torch.distributed, before), a Runner
    checkpoint read through
    MMEngine's loader leaves the list exactly as it was, and torch's default
    torch.load still refuses that file."""
    proc = subprocess.run([python_exe, '-c', IMPORT_PROBE, runner_ckpt[0]],
                          capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, PYTHONPATH=ROOT))
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out['after_import'] == out['before']
    assert out['loaded'] and out['after_load'] == out['after_import']
    assert out['default_refuses']


def test_a_users_own_allowlist_entries_survive_our_reads(runner_ckpt):
    before = list(torch.serialization.get_safe_globals())
    torch.serialization.add_safe_globals([HistoryBuffer])
    try:
        load(runner_ckpt[0])
        assert HistoryBuffer in torch.serialization.get_safe_globals()
    finally:
        torch.serialization.clear_safe_globals()
        torch.serialization.add_safe_globals(before)


# ------------------------------------------------------------------ refused files
class _GetattrPayload:
    """Unpickles to ``getattr(obj, name)`` (``builtins.getattr`` in the pickle)."""

    def __init__(self, obj, name):
        self.obj, self.name = obj, name

    def __reduce__(self):
        return getattr, (self.obj, self.name)


def _write(case, path, marker, runner_file):
    plain = dict(state_dict={'w': torch.zeros(2)})
    if case == 'exec':
        torch.save(with_payload(plain, WritesMarker(marker)), path)
    elif case == 'os.system':
        torch.save(with_payload(plain, TouchesMarker(marker)), path)
    elif case == 'tampered Runner checkpoint':
        torch.save(with_payload(load(runner_file), WritesMarker(marker)), path)
    elif case == 'legacy format':
        open(path, 'wb').write(legacy_bytes(with_payload(plain, WritesMarker(marker))))
    elif case == 'pickle protocol 4':
        torch.save(with_payload(plain, WritesMarker(marker)), path, pickle_protocol=4)
    elif case == 'getattr of another attribute':
        torch.save(with_payload(plain, _GetattrPayload(HistoryBuffer, '__init__')), path)
    elif case == "getattr of a builtin's module":
        torch.save(with_payload(plain, _GetattrPayload(getattr, '__self__')), path)


REFUSED = {
    'exec': 'builtins.exec',
    'os.system': 'posix.system',
    'tampered Runner checkpoint': 'builtins.exec',
    'legacy format': 'builtins.exec',
    'pickle protocol 4': 'pickle opcode 149',
    'getattr of another attribute': "builtins.getattr(HistoryBuffer, '__init__')",
    "getattr of a builtin's module": "builtins.getattr(function, '__self__')",
}


@pytest.mark.parametrize('case', sorted(REFUSED))
def test_a_file_that_would_run_code_is_refused(case, tmp_path, runner_ckpt):
    path, marker = str(tmp_path / 'model.pth'), tmp_path / 'ran'
    _write(case, path, marker, runner_ckpt[0])
    with pytest.raises(UnsafeCheckpointError) as e:
        load(path)
    _assert_refused(e.value, path, REFUSED[case])
    assert not marker.exists()
    if 'getattr' not in case:  # the opt-in reads the file: the payload runs
        with trusted_checkpoints([path]):
            load(path)
        assert marker.exists()


def test_history_buffer_methods_are_not_replaced_by_a_file(tmp_path):
    """HistoryBuffer.__setstate__ copies the pickled statistics methods into the class;
    a file that swaps them (here 'mean' -> max, both allowed) changes nothing."""
    hb = HistoryBuffer()
    hb.update(1.0)
    hb.update(3.0)
    table = HistoryBuffer._statistics_methods
    saved = dict(table)
    table['mean'] = HistoryBuffer.max
    try:
        path = str(tmp_path / 'swap.pth')
        torch.save(dict(message_hub=dict(log_scalars={'loss': hb})), path)
    finally:
        table.clear()
        table.update(saved)
    got = load(path)['message_hub']['log_scalars']['loss']
    assert table['mean'] is HistoryBuffer.mean
    assert got.mean() == 2.0 and got.statistics('mean') == 2.0


def test_the_opt_in_is_per_file(tmp_path, monkeypatch):
    files, markers = {}, {}
    for name in ('a', 'b'):
        files[name], markers[name] = str(tmp_path / f'{name}.pth'), tmp_path / f'ran_{name}'
        torch.save(with_payload(dict(state_dict={}), WritesMarker(markers[name])),
                   files[name])
    with trusted_checkpoints([osp.join(str(tmp_path), '.', 'a.pth')]):  # same real path
        assert load(files['a'])['state_dict'] == {}
        with pytest.raises(UnsafeCheckpointError):
            load(files['b'])
    assert markers['a'].exists() and not markers['b'].exists()
    markers['a'].unlink()
    with pytest.raises(UnsafeCheckpointError):  # the block is over
        load(files['a'])
    assert not markers['a'].exists()
    # the environment variable: a list of files
    monkeypatch.setenv(TRUST_ENV, os.pathsep.join([str(tmp_path / 'x.pth'), files['b']]))
    load(files['b'])
    assert markers['b'].exists()
    with pytest.raises(UnsafeCheckpointError):
        load(files['a'])


def test_torchs_environment_variables(tmp_path, monkeypatch):
    """torch 2.13 applies TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD only where weights_only is
    unset: our explicit weights_only=True still refuses. TORCH_FORCE_WEIGHTS_ONLY_LOAD
    wins over the opt-in (torch then reads trusted files weights-only too)."""
    path, marker = str(tmp_path / 'evil.pth'), tmp_path / 'ran'
    torch.save(with_payload(dict(state_dict={}), WritesMarker(marker)), path)
    monkeypatch.setenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', '1')
    with pytest.raises(UnsafeCheckpointError):
        load(path)
    assert not marker.exists()
    monkeypatch.delenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD')
    monkeypatch.setenv('TORCH_FORCE_WEIGHTS_ONLY_LOAD', '1')
    with trusted_checkpoints([path]), pytest.raises(Exception, match='evil.pth'):
        load(path)
    assert not marker.exists()


# ------------------------------------------------------------------ the tools
def _evil_copy(src_obj, path, marker):
    torch.save(with_payload(src_obj, WritesMarker(marker)), path)
    return path


def test_tools_refuse_a_tampered_checkpoint(tiny, runner_ckpt, tmp_path, python_exe):
    """tools/test.py, tools/infer.py and tools/train.py --resume on a checkpoint that
    is whole but carries code: each exits non-zero naming the file; the code never
    runs. (The three run at once: most of their time is start-up.)"""
    marker = tmp_path / 'ran'
    evil = _evil_copy(dict(state_dict=tiny['state']), str(tmp_path / 'evil.pth'), marker)
    evil_iter = _evil_copy(load(runner_ckpt[0]), str(tmp_path / 'evil_iter_4.pth'), marker)
    data = runner_ckpt[1]
    commands = {
        'test': ['tools/test.py', tiny['cfg_file'], evil, '--work-dir', str(tmp_path / 't')],
        'infer': ['tools/infer.py', tiny['cfg_file'], evil, tiny['image'], '--out-dir',
                  str(tmp_path / 'i')],
        'train --resume': ['tools/train.py', CLASSIFIER, '--work-dir', str(tmp_path / 'r'),
                           '--resume', evil_iter, '--cfg-options',
                           *[f'{k}.dataset.data_root={data}' for k in
                             ('train_dataloader', 'val_dataloader', 'test_dataloader')]],
    }
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS='1')
    procs = {name: subprocess.Popen([python_exe, *cmd], cwd=ROOT, env=env, text=True,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for name, cmd in commands.items()}
    for name, proc in procs.items():
        _, err = proc.communicate(timeout=600)
        path = evil_iter if name == 'train --resume' else evil
        assert proc.returncode != 0, (name, err[-2000:])
        assert f'UnsafeCheckpointError: cannot load checkpoint {path}: refused' in err, \
            (name, err[-3000:])
        assert 'builtins.exec' in err, name
    assert not marker.exists()


def test_tools_read_a_trusted_file(tiny, runner_ckpt, tmp_path):
    """--trust-checkpoint: the same kind of file is read (its marker appears) and the
    tool does its job."""
    test_tool = _tool('tools/test.py', 'test_tool')
    marker = tmp_path / 'ran_test'
    evil = _evil_copy(dict(state_dict=tiny['state']), str(tmp_path / 'evil.pth'), marker)
    metrics = test_tool.main([tiny['cfg_file'], evil, '--work-dir', str(tmp_path / 't'),
                              '--trust-checkpoint', '--cfg-options',
                              'experiment_name=safe_loading_trusted_test'])
    assert marker.exists() and 'wsol/MaxBoxAccV2' in metrics

    marker = tmp_path / 'ran_infer'
    evil = _evil_copy(dict(state_dict=tiny['state']), str(tmp_path / 'evil2.pth'), marker)
    out = _tool('tools/infer.py', 'infer_tool').main(
        [tiny['cfg_file'], evil, tiny['image'], '--out-dir', str(tmp_path / 'i'),
         '--no-overlay', '--trust-checkpoint'])
    assert marker.exists() and len(out['results']) == 1

    marker = tmp_path / 'ran_train'
    evil = _evil_copy(load(runner_ckpt[0]), str(tmp_path / 'evil_iter_4.pth'), marker)
    work = str(tmp_path / 'resumed')
    _tool('tools/train.py', 'train_tool').main(
        [CLASSIFIER, '--work-dir', work, '--resume', evil, '--trust-checkpoint',
         '--cfg-options', 'experiment_name=safe_loading_trusted_train',
         *[f'{k}.dataset.data_root={runner_ckpt[1]}' for k in
           ('train_dataloader', 'val_dataloader', 'test_dataloader')]])
    assert marker.exists()
    assert osp.isfile(osp.join(work, 'iter_6.pth'))
    assert not osp.isfile(osp.join(work, 'iter_2.pth'))  # it started from iter 4


def test_train_trusts_only_the_resumed_file(tmp_path):
    tool = _tool('tools/train.py', 'train_tool_args')
    work = str(tmp_path / 'w')
    os.makedirs(work)
    for it in (2, 4):
        open(osp.join(work, f'iter_{it}.pth'), 'wb').close()
    open(osp.join(work, 'last_checkpoint'), 'w').write(osp.join(work, 'iter_4.pth'))

    def files(*argv):
        args = tool.parse_args([CLASSIFIER, '--work-dir', work, *argv])
        return tool.trusted_files(args, tool.make_config(args))

    assert files('--resume') == []
    assert files('--resume', '--trust-checkpoint') == [osp.join(work, 'iter_4.pth')]
    assert files('--resume', 'x.pth', '--trust-checkpoint') == ['x.pth']
    assert files('--trust-checkpoint', '--cfg-options', 'load_from=y.pth') == ['y.pth']


# ------------------------------------------------------------------ backbone, API, converters
def test_a_backbone_checkpoint_is_refused_unless_listed(tmp_path, monkeypatch):
    from mmpretrain.models.backbones import ViTEVA02

    from tedloc_mm.models.backbones import FrozenBackbone, FrozenEVA
    from tedloc_mm.registry import MODELS
    cfg = Config.fromfile(TINY)
    eva = MODELS.build(cfg.model.backbone)
    marker = tmp_path / 'ran'
    evil = _evil_copy(dict(state_dict=eva.vit.state_dict()), str(tmp_path / 'eva.pth'),
                      marker)
    vit = dict(arch=dict(embed_dims=32, num_layers=1, num_heads=2, feedforward_channels=64),
               img_size=32, patch_size=8, out_type='featmap')
    evil_vit = _evil_copy(dict(state_dict=ViTEVA02(**vit).state_dict()),
                          str(tmp_path / 'vit.pth'), marker)
    backbones = [(MODELS.build(dict(cfg.model.backbone, checkpoint=evil)), evil),
                 (FrozenBackbone(dict(type='ViTEVA02', **vit), checkpoint=evil_vit), evil_vit)]
    assert isinstance(backbones[0][0], FrozenEVA)
    for backbone, path in backbones:
        with pytest.raises(UnsafeCheckpointError) as e:
            backbone.init_weights()
        _assert_refused(e.value, path, 'builtins.exec')
    assert not marker.exists()
    monkeypatch.setenv(TRUST_ENV, evil)
    backbones[0][0].init_weights()
    assert marker.exists()


def test_the_inference_api_refuses_and_its_opt_in_reads(tiny, tmp_path):
    from tedloc_mm.apis import WSOLInferencer, init_localizer
    marker = tmp_path / 'ran'
    evil = _evil_copy(dict(state_dict=tiny['state']), str(tmp_path / 'evil.pth'), marker)
    with pytest.raises(UnsafeCheckpointError) as e:
        init_localizer(tiny['cfg'], evil)
    _assert_refused(e.value, evil, 'builtins.exec')
    with pytest.raises(UnsafeCheckpointError):
        WSOLInferencer(tiny['cfg_file'], evil)
    assert not marker.exists()
    model = init_localizer(tiny['cfg'], evil, trust_checkpoint=True)
    assert marker.exists()
    for k, v in tiny['state'].items():
        assert torch.equal(model.state_dict()[k], v), k


def test_classifier_and_lean_converter_refuse_and_opt_in(tiny, runner_ckpt, tmp_path):
    from tedloc_mm.pseudo_labels.classifier_cam import build_classifier
    marker = tmp_path / 'ran'
    evil = _evil_copy(load(runner_ckpt[0]), str(tmp_path / 'evil_cls.pth'), marker)
    with pytest.raises(UnsafeCheckpointError, match='evil_cls.pth'):
        build_classifier(CLASSIFIER, evil)   # tools/generate_cams.py classifier
    assert not marker.exists()
    build_classifier(CLASSIFIER, evil, trust_checkpoint=True)
    assert marker.exists()
    args = _tool('tools/generate_cams.py', 'cams_tool').parse_args(
        ['classifier', CLASSIFIER, evil, '--data-root', 'd', '--out', 'o',
         '--trust-checkpoint'])
    assert args.trust_checkpoint is True

    marker = tmp_path / 'ran_lean'
    evil = _evil_copy(dict(state_dict=tiny['state']), str(tmp_path / 'evil_full.pth'),
                      marker)
    lean_tool = _tool('tools/model_converters/lean_checkpoint.py', 'lean_tool')
    with pytest.raises(UnsafeCheckpointError, match='evil_full.pth'):
        lean_tool.main([tiny['cfg_file'], evil, str(tmp_path / 'lean.pth')])
    assert not marker.exists()
