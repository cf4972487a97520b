"""One way to fail for the tools: each user mistake of the issue, run as a user would (a
subprocess), exits with status 2 and one ``error:`` line naming the file or value, without
a traceback; ``--debug`` / TEDLOC_DEBUG show it; only rank 0 of a distributed run prints."""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config

import tedloc_mm  # noqa: F401
from tedloc_mm.apis import init_localizer
from tedloc_mm.embedded_benchmarks.gliders import generate_synthetic_wsol
from tedloc_mm.fileio import save_anchor_file
from tedloc_mm.model_index import model_configs, resolve_config
from tedloc_mm.tool_errors import UserError, run_tool
from tool_module import load_tool

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
#: a line of the Runner's banner (its environment dump)
BANNER = 'System environment'


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    """A tiny TeD-Loc config with two validation images, its checkpoint, a checkpoint
    of another model (a linear probe's keys), a good and a truncated PNG."""
    d = tmp_path_factory.mktemp('tool_errors')
    anchors = str(d / 'anchors.pth')
    save_anchor_file(anchors, torch.randn(3, 32, generator=torch.Generator().manual_seed(0)),
                     ['ant', 'bee', 'cow'], 'tiny', 'random-init', ['{}'])
    cfg = Config.fromfile(osp.join(ROOT, 'tests/data/configs/tiny_tedloc.py'))
    cfg.model.head.anchor_file = anchors
    data = str(d / 'data')
    generate_synthetic_wsol(data, seed=5, num_classes=3, num_train=0, num_val=2,
                            num_test=0, image_size=64)
    cfg.val_dataloader.dataset.data_root = data
    cfg.test_dataloader = cfg.val_dataloader
    cfg.custom_hooks = []
    cfg_file = str(d / 'cfg.py')
    cfg.dump(cfg_file)
    torch.manual_seed(0)
    ckpt = str(d / 'tiny.pth')
    torch.save(dict(state_dict=init_localizer(cfg, None).state_dict()), ckpt)
    probe = str(d / 'probe.pth')     # the keys of a linear probe, not TeD-Loc's
    torch.save(dict(state_dict={'head.fc.weight': torch.zeros(3, 4),
                                'head.fc.bias': torch.zeros(3)}), probe)
    good = str(d / 'good.png')
    cv2.imwrite(good, np.random.default_rng(0).integers(0, 256, (40, 50, 3)).astype(np.uint8))
    bad = str(d / 'bad.png')
    open(bad, 'wb').write(open(good, 'rb').read()[:60])
    return dict(dir=d, cfg=cfg_file, ckpt=ckpt, probe=probe, good=good, bad=bad)


def run(args, env=None):
    full_env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS='1')
    full_env.pop('TEDLOC_DEBUG', None)
    full_env.update(env or {})
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=full_env,
                          capture_output=True, text=True, timeout=600)


def assert_user_error(proc, tool, *names):
    """Exit status 2, no traceback, one ``<tool>: error:`` line naming each of ``names``."""
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-3000:])
    assert 'Traceback' not in proc.stderr, proc.stderr[-3000:]
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith(f'{tool}: error: ')]
    assert len(lines) == 1, proc.stderr[-3000:]
    for name in names:
        assert name in lines[0], (name, lines[0])
    return lines[0]


def test_missing_config(tiny, tmp_path):
    missing = str(tmp_path / 'no_such_config.py')
    for tool, args in (('test.py', [missing, tiny['ckpt']]),
                       ('infer.py', [missing, tiny['ckpt'], tiny['good']]),
                       ('train.py', [missing])):
        proc = run([f'tools/{tool}', *args])
        assert_user_error(proc, tool, missing)
        assert BANNER not in proc.stdout + proc.stderr      # before the Runner


def test_missing_checkpoint(tiny, tmp_path):
    missing = str(tmp_path / 'no_such.pth')
    for tool, args in (('test.py', [tiny['cfg'], missing]),
                       ('infer.py', [tiny['cfg'], missing, tiny['good']])):
        proc = run([f'tools/{tool}', *args, '--work-dir' if tool == 'test.py' else
                    '--out-dir', str(tmp_path / 'out')])
        assert_user_error(proc, tool, 'checkpoint not found', missing)
        assert BANNER not in proc.stdout + proc.stderr


def test_missing_input_image(tiny, tmp_path):
    missing = str(tmp_path / 'no_such.png')
    proc = run(['tools/infer.py', tiny['cfg'], tiny['ckpt'], missing, '--out-dir',
                str(tmp_path / 'out')])
    assert_user_error(proc, 'infer.py', missing)


def test_unreadable_image_strict_stops(tiny, tmp_path):
    proc = run(['tools/infer.py', tiny['cfg'], tiny['ckpt'], tiny['good'], tiny['bad'],
                '--strict', '--out-dir', str(tmp_path / 'out')])
    assert_user_error(proc, 'infer.py', 'ImageReadError', tiny['bad'], 'truncated')
    assert not osp.exists(tmp_path / 'out' / 'results.json')


def test_unreadable_image_skipped_and_counted(tiny, tmp_path):
    out = tmp_path / 'out'
    proc = run(['tools/infer.py', tiny['cfg'], tiny['ckpt'], tiny['bad'], tiny['good'],
                '--out-dir', str(out)])
    assert proc.returncode == 0, proc.stderr[-3000:]
    skipped = [ln for ln in proc.stderr.splitlines() if ln.startswith('skipped: ')]
    assert len(skipped) == 1 and tiny['bad'] in skipped[0]
    assert '1 unreadable image(s) skipped' in proc.stderr
    data = json.load(open(out / 'results.json'))
    assert [r['img_path'] for r in data['results']] == [tiny['good']]
    assert [s['img_path'] for s in data['skipped']] == [tiny['bad']]
    assert osp.isfile(out / data['results'][0]['vis_file'])


def test_device_that_does_not_exist(tiny, tmp_path):
    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    device = f'cuda:{n + 3}'
    proc = run(['tools/infer.py', tiny['cfg'], tiny['ckpt'], tiny['good'], '--device',
                device, '--out-dir', str(tmp_path / 'out')])
    assert_user_error(proc, 'infer.py', device)
    proc = run(['tools/infer.py', tiny['cfg'], tiny['ckpt'], tiny['good'], '--device',
                'gpu0', '--out-dir', str(tmp_path / 'out')])
    assert_user_error(proc, 'infer.py', "'gpu0'")


def test_cam_threshold_out_of_range(tiny, tmp_path):
    proc = run(['tools/infer.py', tiny['cfg'], tiny['ckpt'], tiny['good'],
                '--cam-threshold', '1.5', '--out-dir', str(tmp_path / 'out')])
    assert_user_error(proc, 'infer.py', '--cam-threshold', '1.5')
    assert 'CAM threshold' not in proc.stdout       # refused before the model was built
    proc = run(['tools/infer.py', tiny['cfg'], tiny['ckpt'], tiny['good'],
                '--cam-threshold', 'nometrics.json', '--out-dir', str(tmp_path / 'out')])
    assert_user_error(proc, 'infer.py', 'nometrics.json')


def test_linear_probe_given_as_tedloc_checkpoint(tiny, tmp_path):
    proc = run(['tools/infer.py', tiny['cfg'], tiny['probe'], tiny['good'], '--out-dir',
                str(tmp_path / 'out')])
    assert_user_error(proc, 'infer.py', 'CheckpointWeightsError', tiny['probe'],
                      "51 of the model's 51 tensors are missing")
    # through the Runner: after its banner, still one line and status 2
    proc = run(['tools/test.py', tiny['cfg'], tiny['probe'], '--work-dir',
                str(tmp_path / 'work')])
    assert_user_error(proc, 'test.py', 'CheckpointWeightsError', tiny['probe'])


def test_cfg_options_with_spaces(tiny, tmp_path):
    tool = load_tool('tools/test.py')
    args = tool.parse_args([tiny['cfg'], 'none', '--cfg-options', 'work_dir=/x y/z',
                            'a.b=[1, 2]', 'c=(3, 4)', 'd=x,y'])
    assert args.cfg_options == {'work_dir': '/x y/z', 'a.b': [1, 2], 'c': (3, 4),
                                'd': ['x', 'y']}
    # the shell split an unquoted value: refused, naming the stray part
    proc = run(['tools/test.py', tiny['cfg'], tiny['ckpt'], '--cfg-options',
                'work_dir=/x', 'y/z'])
    assert proc.returncode == 2 and 'Traceback' not in proc.stderr
    assert "'y/z' is not KEY=VALUE" in proc.stderr
    # an element of a list with a space inside cannot be kept: refused with the reason
    proc = run(['tools/test.py', tiny['cfg'], tiny['ckpt'], '--cfg-options',
                'a=[/x y/z, /w]'])
    assert proc.returncode == 2 and 'contains a space' in proc.stderr


def test_debug_and_env_show_the_traceback(tiny, tmp_path):
    missing = str(tmp_path / 'no_such.pth')
    args = ['tools/test.py', tiny['cfg'], missing]
    for proc in (run(args + ['--debug']), run(args, env={'TEDLOC_DEBUG': '1'})):
        assert proc.returncode == 1
        assert 'Traceback' in proc.stderr and 'UserError' in proc.stderr
        assert missing in proc.stderr


def test_distributed_only_rank_0_prints(tiny, tmp_path):
    missing = str(tmp_path / 'no_such.pth')
    for rank, printed in (('0', True), ('1', False)):
        proc = run(['tools/test.py', tiny['cfg'], missing], env={'RANK': rank})
        assert proc.returncode == 2
        assert (missing in proc.stderr) == printed, proc.stderr


def test_seg_tools_exit_2(tmp_path):
    missing = str(tmp_path / 'no_export')
    proc = run(['tools/analysis_tools/eval_seg_labels.py', '--pred', missing, '--gt', missing])
    assert_user_error(proc, 'eval_seg_labels.py', missing)


def test_internal_bugs_still_raise():
    def buggy(argv=None):
        return {}['missing key']
    with pytest.raises(KeyError):
        run_tool(buggy, [])

    def mistake(argv=None):
        raise UserError('a user mistake')
    assert run_tool(mistake, [], 'x.py') == 2


def test_model_index_names_are_accepted_as_configs(tiny):
    names = model_configs()
    assert 'linear-probe_efficientnet-lite0_stamps' in names
    assert all(osp.isfile(p) for p in names.values())
    path = resolve_config('linear-probe_efficientnet-lite0_stamps')
    assert path == osp.join(ROOT, 'tedloc_mm', 'configs', 'demo',
                            'linear-probe_efficientnet-lite0_stamps.py')
    assert resolve_config(tiny['cfg']) == tiny['cfg']
    tool = load_tool('tools/test.py')
    assert tool.check_inputs(argparse.Namespace(
        config='gradcam_efficientnet-lite0_stamps', checkpoint='none')).endswith(
            'gradcam_efficientnet-lite0_stamps.py')
    with pytest.raises(UserError, match='did you mean linear-probe_efficientnet'):
        resolve_config('linear-probe')


def test_show_dir_turns_on_the_visualization_hook(tiny):
    """tools/test.py --show-dir as MMPretrain's test.py: the config's
    default_hooks.visualization is enabled with the options given."""
    tool = load_tool('tools/test.py')
    args = tool.parse_args([tiny['cfg'], 'none', '--show-dir', 'vis_out', '--interval', '3'])
    cfg = Config.fromfile(tiny['cfg'])
    # off, as in our runtime's default_hooks (the tiny config switches it on)
    cfg.default_hooks.visualization.enable = False
    tool.with_show_dir(cfg, args)
    vis = cfg.default_hooks.visualization
    assert (vis.enable, vis.out_dir, vis.interval, vis.show, vis.wait_time) == (
        True, 'vis_out', 3, False, 2)
    del cfg.default_hooks['visualization']
    with pytest.raises(UserError, match='default_hooks.visualization'):
        tool.with_show_dir(cfg, args)
    proc = run(['tools/test.py', tiny['cfg'], 'none', '--show-dir', 'v', '--interval', '0'])
    assert proc.returncode == 2 and "--interval: 0 is not >= 1" in proc.stderr


def test_unreadable_image_through_test_py(tiny, tmp_path):
    """An image of the test set that cannot be read (0 bytes): one line naming it."""
    data = str(tmp_path / 'data')
    generate_synthetic_wsol(data, seed=5, num_classes=3, num_train=0, num_val=1,
                            num_test=0, image_size=64)
    img_id = open(osp.join(data, 'metadata/val/image_ids.txt')).readline().strip()
    open(osp.join(data, img_id), 'wb').close()
    proc = run(['tools/test.py', tiny['cfg'], tiny['ckpt'], '--work-dir', str(tmp_path / 'w'),
                '--cfg-options', f'test_dataloader.dataset.data_root={data}'])
    assert_user_error(proc, 'test.py', 'ImageReadError', osp.join(data, img_id), '0-byte')


def test_worker_traceback_folds_to_its_last_line():
    from tedloc_mm.tool_errors import one_line

    class ImageReadError(OSError):
        pass
    err = ImageReadError('Caught ImageReadError in DataLoader worker process 0.\n'
                         'Original Traceback (most recent call last):\n  File "x.py"\n'
                         'ImageReadError: cannot read image a.png: 0-byte file')
    assert one_line(err) == 'cannot read image a.png: 0-byte file'
