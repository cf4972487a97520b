"""tools/dist_train.sh: 2 CPU processes (gloo DDP) train the same weights as 1 process
with the same total batch.

Why they can agree: DDP averages the gradients of the ranks, and each rank's loss is
the mean over its half batch, so the averaged gradient is that of the full-batch mean;
``InfiniteSampler`` draws one permutation from its seed on every rank and gives rank r
the items r, r + 2, ... of it, so the 2 x 2 images of a step are the 4 images of the
1-process step; the seed is fixed (``randomness.seed``), so both runs start from the
same weights (DDP also broadcasts rank 0's at start). What differs is the order of
floating-point sums (all-reduce of two half-batch gradients vs one 4-image sum): the
weights agree to float32 rounding (measured max |diff| 1.5e-8 after 6 SGD steps with
momentum, which moved them by up to 7e-2), not bit for bit.

Not covered by this equality: a pipeline that draws random numbers per image, such as
TeD-Loc's PseudoLabelSampler, which uses NumPy's global generator. Each rank has its
own generator (same seed, or seed + rank with ``randomness.diff_rank_seed``), so rank 1
draws for image p1 what the 1-process run draws for image p0: the pseudo-labels are
equally distributed but not the same, and weights differ by more than rounding.
"""
import json
import os
import os.path as osp
import subprocess

import pytest

from tiny_classifier_runs import CONFIG, _data_opts, _make_folder_dataset, _state

SEEDED = ['randomness.seed=0', 'train_dataloader.sampler.seed=0']
# --auto-scale-lr against a base batch of 8: lr x 4 / 8 in both runs, if the total batch
# counts the processes (2 x 2) as MMEngine's scale_lr does
SCALED = ['--auto-scale-lr', '--no-validate', '--cfg-options', 'auto_scale_lr.base_batch_size=8']


def _lrs(work_dir):
    path = [osp.join(r, f) for r, _, fs in os.walk(work_dir) for f in fs
            if f == 'scalars.json'][0]
    return [s['lr'] for s in map(json.loads, open(path)) if 'lr' in s]


def test_two_cpu_processes_train_what_one_does(tmp_path, repo_root, python_exe):
    data = str(tmp_path / 'data')
    _make_folder_dataset(data)
    one, two = str(tmp_path / 'one'), str(tmp_path / 'two')
    # no PORT: torchrun picks a free port itself (--standalone), nothing to collide with
    env = dict({k: v for k, v in os.environ.items() if k not in ('PORT', 'NNODES')},
               PYTHONPATH=repo_root, OMP_NUM_THREADS='1', PYTHON=python_exe)
    # both runs at once: most of their time is start-up (imports), which overlaps
    runs = [
        subprocess.Popen([python_exe, 'tools/train.py', CONFIG, '--work-dir', one, *SCALED,
                          *_data_opts(data), *SEEDED, 'train_dataloader.batch_size=4'],
                         cwd=repo_root, env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True),
        subprocess.Popen(['bash', 'tools/dist_train.sh', CONFIG, '2', '--work-dir', two,
                          *SCALED, *_data_opts(data), *SEEDED,
                          'train_dataloader.batch_size=2'],
                         cwd=repo_root, env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)]
    logs = [p.communicate(timeout=600)[0] for p in runs]
    for p, log in zip(runs, logs):
        assert p.returncode == 0, log[-5000:]
    # the second run was distributed over 2 processes (MMEngine's environment report)
    assert 'Distributed training: True' in logs[1] and 'GPU number: 2' in logs[1], \
        logs[1][-3000:]
    assert 'Distributed training: False' in logs[0]
    # the lr was scaled to 0.05 x 4 / 8 in both (and by 0.1 at the milestone, iter 3)
    for work_dir in (one, two):
        lrs = _lrs(work_dir)
        assert lrs == pytest.approx([0.025] * 3 + [0.0025] * 3), (work_dir, lrs)
    init = _state(osp.join(one, 'iter_2.pth'))
    a, b = _state(osp.join(one, 'iter_6.pth')), _state(osp.join(two, 'iter_6.pth'))
    assert a.keys() == b.keys()
    diff = max(float((a[k].float() - b[k].float()).abs().max()) for k in a)
    moved = max(float((a[k].float() - init[k].float()).abs().max()) for k in a)
    # equal to float32 rounding; training moved the weights by far more than that
    assert diff < 1e-5, diff
    assert moved > 1e-2, moved
