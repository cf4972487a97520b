"""tedloc_mm/workflow/demo_seeds.py (the driver's --seeds): means and sample std by hand over fake
seed work dirs, the per-seed values kept, the ablation rows told apart by their map,
the per-seed options stripped from the passed-on command line, and clear errors for a
missing seed output or a non-number. The driver's end-to-end --seeds run is in
test_demo_pipeline.py (its --quick fixture runs with --seeds 0)."""
import json
import os
import os.path as osp
import sys

import pytest

from tedloc_mm.workflow import demo_seeds


def _write(path, obj):
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        json.dump(obj, f)


def _fake_seed(work, seed, cam, fg, ablation_fg=None):
    d = osp.join(work, f'seed_{seed}')
    _write(osp.join(d, 'results', 'table.json'),
           {'CAM': {'MaxBoxAcc': cam, 'Top-1 Cls': 80.0},
            'TeD-Loc': {'MaxBoxAcc': fg, 'Top-1 Cls': 81.0 + seed}})
    _write(osp.join(d, 'classifier', 'linear_probe.json'),
           dict(C=0.01, C_source='fixed', val_acc=85.0 + seed, val_acc_per_C={'0.01': 85.0}))
    if ablation_fg is not None:
        _write(osp.join(d, 'results', 'ablations.json'),
               [dict(row='full', map='fg', paper='98.7', MaxBoxAcc=ablation_fg),
                dict(row='full', map='anchor', paper='98.7', MaxBoxAcc=ablation_fg - 10)])


def test_means_and_sample_std_by_hand(tmp_path):
    """CAM MaxBoxAcc 60, 62, 67: mean 63, sample std sqrt(((-3)^2 + 1 + 4^2) / 2)
    = sqrt(13) = 3.6056; a constant column has std 0."""
    work = str(tmp_path)
    for seed, cam, fg in ((0, 60.0, 70.0), (1, 62.0, 74.0), (2, 67.0, 72.0)):
        _fake_seed(work, seed, cam, fg, ablation_fg=fg)
    texts = demo_seeds.collect(work, [0, 1, 2], ablations=True)
    with open(osp.join(work, 'results', 'seeds.json')) as f:
        out = json.load(f)
    cam = out['rows']['CAM']['MaxBoxAcc']
    assert cam['mean'] == pytest.approx(63.0) and cam['std'] == pytest.approx(13 ** 0.5)
    assert cam['values'] == {'0': 60.0, '1': 62.0, '2': 67.0} and cam['n'] == 3
    assert out['rows']['CAM']['Top-1 Cls']['std'] == 0.0
    fg = out['rows']['TeD-Loc']['MaxBoxAcc']
    assert fg['mean'] == pytest.approx(72.0) and fg['std'] == pytest.approx(2.0)
    assert out['linear_probe']['2']['val_acc'] == 87.0
    assert '| CAM | 63.00 ± 3.61 | 80.00 ± 0.00 |' in texts['seeds']
    assert '| TeD-Loc | 70.00 | 81.00 |' in texts['seeds']  # seed 0's own table
    with open(osp.join(work, 'results', 'seeds.md')) as f:
        assert f.read() == texts['seeds']
    with open(osp.join(work, 'results', 'seeds_ablations.json')) as f:
        abl = json.load(f)['rows']
    # the same row name with two maps: two rows
    assert abl['full [fg]']['MaxBoxAcc']['mean'] == pytest.approx(72.0)
    assert abl['full [anchor]']['MaxBoxAcc']['mean'] == pytest.approx(62.0)


def test_one_seed_has_its_own_values_and_zero_std(tmp_path):
    _fake_seed(str(tmp_path), 5, 61.5, 70.25)
    demo_seeds.collect(str(tmp_path), [5], ablations=False)
    with open(osp.join(str(tmp_path), 'results', 'seeds.json')) as f:
        cell = json.load(f)['rows']['TeD-Loc']['MaxBoxAcc']
    assert cell == dict(mean=70.25, std=0.0, n=1, values={'5': 70.25})
    assert not osp.exists(osp.join(str(tmp_path), 'results', 'seeds_ablations.json'))


def test_missing_seed_output_and_non_numbers_are_named(tmp_path):
    work = str(tmp_path)
    _fake_seed(work, 0, 60.0, 70.0)
    with pytest.raises(SystemExit, match=r'seed_1/results/table.json is missing'):
        demo_seeds.collect(work, [0, 1], ablations=False)
    with pytest.raises(ValueError, match=r"seed 1: row 'CAM', metric 'MaxBoxAcc' is None"):
        demo_seeds.aggregate({0: {'CAM': {'MaxBoxAcc': 1.0}}, 1: {'CAM': {'MaxBoxAcc': None}}})
    with pytest.raises(ValueError, match=r"seed 1: row 'CAM', metric 'PxAP' is None"):
        demo_seeds.aggregate({0: {'CAM': {'PxAP': 1.0}}, 1: {'TeD-Loc': {'PxAP': 1.0}}})


def test_per_seed_options_are_not_passed_on():
    argv = ['--seeds', '0', '1', '2', '--quick', '--work-dir', 'w', '--data', 'gliders',
            '--seed=3', '--ablations', '--num-overlays', '2']
    assert demo_seeds.passed_on_argv(argv) == ['--quick', '--data', 'gliders', '--ablations',
                                               '--num-overlays', '2']
