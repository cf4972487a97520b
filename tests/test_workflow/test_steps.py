"""The drivers' step runner (tedloc_mm/workflow/steps.py): a step is done only when its
command exits 0; a killed training resumes on the next run and ends on the weights of an
uninterrupted one; done steps are skipped; times and memory are recorded."""
import json
import os
import os.path as osp
import sys

import pytest
import torch
from tiny_classifier_runs import CONFIG, _data_opts, _make_folder_dataset, _state

from tedloc_mm.workflow import StepFailed, StepRunner, insert_before_options


def _runner(tmp_path, repo_root, **kw):
    env = dict(OMP_NUM_THREADS='1',
               PYTHONPATH=osp.join(repo_root, 'tests', 'plugins'))
    return StepRunner(str(tmp_path / 'steps'), repo_root, env=env, log=lambda line: None,
                      **kw)


def test_insert_before_options():
    assert insert_before_options(['t.py', 'c', '--cfg-options', 'a=1'], ['--resume']) == [
        't.py', 'c', '--resume', '--cfg-options', 'a=1']
    assert insert_before_options(['t.py', 'c'], ['--resume']) == ['t.py', 'c', '--resume']


def test_failed_step_is_not_done_and_done_step_is_skipped(tmp_path, repo_root):
    steps = _runner(tmp_path, repo_root)
    out = tmp_path / 'out.txt'
    fail = [sys.executable, '-c', f'open({str(out)!r}, "w").write("half"); raise SystemExit(3)']
    with pytest.raises(StepFailed, match=r"step 'write'.*exit code 3"):
        steps.run('write', 'write a file', fail, [str(out)])
    assert out.exists() and not steps.is_done('write', [str(out)])  # output, no mark

    ok = [sys.executable, '-c', f'open({str(out)!r}, "a").write("+done")']
    assert steps.run('write', 'write a file', ok, [str(out)])
    assert steps.is_done('write', [str(out)])
    mark = steps.record('write')
    assert mark['cmd'] == ok and mark['cpu_s'] >= 0 and mark['peak_rss_mib'] > 1
    # done: not run again (the file would grow)
    assert not _runner(tmp_path, repo_root).run('write', 'write a file', ok, [str(out)])
    assert out.read_text() == 'half+done'
    # its output gone: run again; --force: run again
    out.unlink()
    assert _runner(tmp_path, repo_root).run('write', 'write a file', ok, [str(out)])
    assert _runner(tmp_path, repo_root, force=True).run('write', 'write a file', ok,
                                                        [str(out)])
    assert out.read_text() == '+done+done'


def test_killed_training_resumes_to_the_uninterrupted_weights(tmp_path, repo_root):
    data = str(tmp_path / 'data')
    _make_folder_dataset(data)
    crashing = tmp_path / 'crashing.py'  # the tiny config plus a hook that kills it once
    crashing.write_text(
        f"_base_ = ['{osp.join(repo_root, CONFIG)}']\n"
        "custom_imports = dict(imports=['tedloc_mm', 'interrupt_hook'])\n"
        "custom_hooks = [dict(type='InterruptAfterIterHook', at_iter=4, "
        f"once_file='{tmp_path / 'killed_once'}')]\n")

    def train(steps, cfg, work):
        return steps.run('train', 'train', [sys.executable, 'tools/train.py', cfg,
                                            '--work-dir', work, '--cfg-options',
                                            *_data_opts(data)],
                         partial=osp.join(work, 'last_checkpoint'))

    full = str(tmp_path / 'full')
    train(_runner(tmp_path / 'a', repo_root), CONFIG, full)

    work = str(tmp_path / 'killed')
    steps = _runner(tmp_path / 'b', repo_root)
    with pytest.raises(StepFailed, match='exit code 17'):
        train(steps, str(crashing), work)
    # MMEngine wrote last_checkpoint at the save of iteration 4: not done for all that
    assert osp.isfile(osp.join(work, 'last_checkpoint'))
    assert not steps.is_done('train')
    assert not osp.isfile(osp.join(work, 'iter_6.pth'))

    assert train(_runner(tmp_path / 'b', repo_root), str(crashing), work)  # the same command
    assert steps.record('train')['cmd'][3:6] == ['--work-dir', work, '--resume']
    # it started at iteration 5: the re-run's own log holds iterations 5 and 6 only
    runs = sorted(d for d in os.listdir(work) if osp.isdir(osp.join(work, d)))
    assert len(runs) == 2
    scalars = [json.loads(line) for line in
               open(osp.join(work, runs[-1], 'vis_data', 'scalars.json'))]
    assert [s['iter'] for s in scalars if 'loss' in s] == [5, 6]
    a, b = _state(osp.join(full, 'iter_6.pth')), _state(osp.join(work, 'iter_6.pth'))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    init = _state(osp.join(full, 'iter_2.pth'))
    assert any(not torch.equal(a[k], init[k]) for k in a)  # training moved the weights
    # finished: the next run skips it
    assert not train(_runner(tmp_path / 'b', repo_root), str(crashing), work)
