"""tools/train.py, tools/test.py, tools/dist_test.sh and --resume, end to end on a tiny model.

These run the real scripts in subprocesses, as a user would.
"""
import json
import os
import os.path as osp
import subprocess

import pytest
import torch
from tedloc_mm.tool_errors import UserError
from tiny_classifier_runs import CONFIG, _data_opts, _make_folder_dataset, _state  # noqa: F401


@pytest.fixture(scope='module')
def folder_dataset(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('folder_dataset'))
    _make_folder_dataset(root)
    return root


def _run(args, repo_root, extra_env=None, check=True, base_env=None):
    env = dict(os.environ if base_env is None else base_env,
               PYTHONPATH=repo_root + os.pathsep + osp.join(repo_root, 'tests', 'plugins'),
               OMP_NUM_THREADS='1')
    env.update(extra_env or {})
    proc = subprocess.run(args, cwd=repo_root, env=env, capture_output=True, text=True,
                          timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f'{args} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n'
                             f'{proc.stderr[-5000:]}')
    return proc


def test_train_then_single_and_two_process_test_agree(folder_dataset, tmp_path, repo_root,
                                                      python_exe):
    work = str(tmp_path / 'train')
    _run([python_exe, 'tools/train.py', CONFIG, '--work-dir', work, '--cfg-options',
          *_data_opts(folder_dataset)], repo_root)
    ckpt = osp.join(work, 'iter_6.pth')
    assert osp.isfile(ckpt)

    single = str(tmp_path / 'single.json')
    _run([python_exe, 'tools/test.py', CONFIG, ckpt, '--work-dir', str(tmp_path / 't1'),
          '--out', single, '--cfg-options', *_data_opts(folder_dataset)], repo_root)
    double = str(tmp_path / 'double.json')
    # 15 test images over 2 processes with batch 3: uneven shards, padding to trim.
    # No PORT: torchrun picks a free port itself (--standalone), nothing to collide with
    env = {k: v for k, v in os.environ.items() if k not in ('PORT', 'NNODES')}
    _run(['bash', 'tools/dist_test.sh', CONFIG, ckpt, '2', '--work-dir',
          str(tmp_path / 't2'), '--out', double, '--cfg-options',
          *_data_opts(folder_dataset)], repo_root, base_env=env,
         extra_env={'PYTHON': python_exe})
    m1, m2 = json.load(open(single)), json.load(open(double))
    assert set(m1) == {'accuracy/top1', 'accuracy/top2'}
    assert m1 == m2
    # the run learnt something: the colour decides the class
    assert m1['accuracy/top1'] > 100 / 3


def test_resume_after_interruption_matches_uninterrupted_run(folder_dataset, tmp_path,
                                                             repo_root, python_exe):
    full = str(tmp_path / 'full')
    _run([python_exe, 'tools/train.py', CONFIG, '--work-dir', full, '--cfg-options',
          *_data_opts(folder_dataset)], repo_root)

    interrupted = str(tmp_path / 'interrupted')
    crashing = tmp_path / 'crashing.py'  # the same config plus a hook that kills it
    crashing.write_text(
        f"_base_ = ['{osp.join(repo_root, CONFIG)}']\n"
        "custom_imports = dict(imports=['tedloc_mm', 'interrupt_hook'])\n"
        "custom_hooks = [dict(type='InterruptAfterIterHook', at_iter=4)]\n")
    proc = _run([python_exe, 'tools/train.py', str(crashing), '--work-dir', interrupted,
                 '--cfg-options', *_data_opts(folder_dataset)], repo_root, check=False)
    assert proc.returncode == 17, proc.stderr[-3000:]
    assert osp.isfile(osp.join(interrupted, 'iter_4.pth'))
    assert not osp.isfile(osp.join(interrupted, 'iter_6.pth'))

    _run([python_exe, 'tools/train.py', CONFIG, '--work-dir', interrupted, '--resume',
          '--cfg-options', *_data_opts(folder_dataset)], repo_root)
    a = _state(osp.join(full, 'iter_6.pth'))
    b = _state(osp.join(interrupted, 'iter_6.pth'))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    # and training did move the weights (the comparison is not between two inits)
    init = _state(osp.join(full, 'iter_2.pth'))
    assert any(not torch.equal(a[k], init[k]) for k in a)

    # --resume PATH: from a named checkpoint into a fresh work dir
    elsewhere = str(tmp_path / 'elsewhere')
    _run([python_exe, 'tools/train.py', CONFIG, '--work-dir', elsewhere, '--resume',
          osp.join(interrupted, 'iter_4.pth'), '--cfg-options',
          *_data_opts(folder_dataset)], repo_root)
    assert not osp.isfile(osp.join(elsewhere, 'iter_2.pth'))  # it started at iter 4
    c = _state(osp.join(elsewhere, 'iter_6.pth'))
    for k in a:
        assert torch.equal(a[k], c[k]), k


def test_train_rejects_missing_config(tmp_path, repo_root, python_exe):
    proc = _run([python_exe, 'tools/train.py', 'configs/does_not_exist.py'], repo_root,
                check=False)
    assert proc.returncode != 0
    assert 'does_not_exist.py' in proc.stderr


def _train_tool():
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        'train_tool', osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))),
                               'tools', 'train.py'))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _config(tool, *args):
    return tool.make_config(tool.parse_args([CONFIG, '--work-dir', '/tmp/unused', *args]))


def test_resume_options_set_the_runner_config():
    tool = _train_tool()
    cfg = _config(tool, '--resume', 'work_dirs/x/iter_4.pth')
    assert cfg.resume is True and cfg.load_from == 'work_dirs/x/iter_4.pth'
    cfg = _config(tool, '--resume')
    assert cfg.resume is True and cfg.load_from is None   # the latest in the work dir
    cfg = _config(tool)
    assert not cfg.get('resume', False)


@pytest.mark.skipif(torch.cuda.is_available(), reason='the CPU error path')
def test_amp_without_an_accelerator_is_a_clear_error():
    tool = _train_tool()
    assert tool.amp_device_available() is False
    with pytest.raises(UserError, match=r'--amp needs a GPU .*Train without --amp'):
        _config(tool, '--amp')


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a GPU')
def test_amp_with_a_gpu_selects_mmengine_amp_wrapper():
    cfg = _config(_train_tool(), '--amp')
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
    assert cfg.optim_wrapper.loss_scale == 'dynamic'


def test_auto_scale_lr_needs_a_base_batch_size():
    tool = _train_tool()
    with pytest.raises(UserError, match='auto_scale_lr.base_batch_size'):
        _config(tool, '--auto-scale-lr')
    cfg = _config(tool, '--auto-scale-lr', '--cfg-options', 'auto_scale_lr.base_batch_size=8')
    assert cfg.auto_scale_lr == dict(base_batch_size=8, enable=True)
