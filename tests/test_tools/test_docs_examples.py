"""The offline inference example of docs/en/inference.md runs: its shell block and its
Python block, on a tiny TeD-Loc and two images, with only the assignments of CONFIG,
CHECKPOINT and IMAGES / IMAGE replaced (a person runs them on the demo's outputs)."""
import ast
import json
import os
import os.path as osp
import re
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config

import tedloc_mm  # noqa: F401
from tedloc_mm.apis import LocalizationResult, init_localizer
from tedloc_mm.fileio import save_anchor_file

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DOC = osp.join(ROOT, 'docs', 'en', 'inference.md')
MARKER = '<!-- tests/test_tools/test_docs_examples.py runs the next two blocks'
REPLACED = ('CONFIG', 'CHECKPOINT', 'IMAGES', 'IMAGE')


def example_blocks():
    """(bash block, python block): the two fenced blocks after the marker."""
    text = open(DOC, encoding='utf-8').read()
    assert MARKER in text, 'the marked example is gone from docs/en/inference.md'
    blocks = re.findall(r'```(\w+)\n(.*?)```', text[text.index(MARKER):], re.S)[:2]
    assert [lang for lang, _ in blocks] == ['bash', 'python']
    return blocks[0][1], blocks[1][1]


@pytest.fixture(scope='module')
def fixture(tmp_path_factory):
    d = tmp_path_factory.mktemp('docs_example')
    anchors = str(d / 'anchors.pth')
    save_anchor_file(anchors, torch.randn(3, 32, generator=torch.Generator().manual_seed(0)),
                     ['ant', 'bee', 'cow'], 'tiny', 'random-init', ['{}'])
    cfg = Config.fromfile(osp.join(ROOT, 'tests/data/configs/tiny_tedloc.py'))
    cfg.model.head.anchor_file = anchors
    cfg_file = str(d / 'cfg.py')
    cfg.dump(cfg_file)
    torch.manual_seed(0)
    ckpt = str(d / 'best_wsol_MaxBoxAccV2_iter_100.pth')
    torch.save(dict(state_dict=init_localizer(cfg, None).state_dict()), ckpt)
    rng = np.random.default_rng(0)
    images = d / 'images' / 'test'
    for name in ('00_ant/a.png', '01_bee/b.png'):
        (images / name).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(images / name), rng.integers(0, 256, (48, 56, 3)).astype(np.uint8))
    return dict(dir=d, config=cfg_file, checkpoint=ckpt, images=str(images))


def test_the_shell_example_runs(fixture, tmp_path):
    bash, _ = example_blocks()
    kept = [ln for ln in bash.splitlines() if not re.match(r'(CONFIG|CHECKPOINT|IMAGES)=', ln)]
    assert len(kept) < len(bash.splitlines())           # the assignments were there
    script = (f'CONFIG={fixture["config"]}\nCHECKPOINT={fixture["checkpoint"]}\n'
              f'IMAGES={fixture["images"]}\n' + '\n'.join(kept) + '\n')
    os.symlink(osp.join(ROOT, 'tools'), tmp_path / 'tools')   # the commands' relative paths
    env = dict(os.environ, PYTHONPATH=ROOT,
               PATH=osp.dirname(sys.executable) + os.pathsep + os.environ['PATH'])
    proc = subprocess.run(['bash', '-e', '-c', script], cwd=str(tmp_path), env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.load(open(tmp_path / 'outputs' / 'results.json'))
    assert len(out['results']) == 2 and out['skipped'] == []
    assert all(len(r['topk']) == 3 for r in out['results'])
    assert sorted(r['vis_file'] for r in out['results']) == ['vis/00_ant/a.png',
                                                             'vis/01_bee/b.png']


def test_the_python_example_runs(fixture, capsys):
    _, python = example_blocks()
    tree = ast.parse(python)
    body = [node for node in tree.body if not (
        isinstance(node, ast.Assign) and len(node.targets) == 1
        and getattr(node.targets[0], 'id', None) in REPLACED)]
    assert len(body) == len(tree.body) - 3
    scope = dict(CONFIG=fixture['config'], CHECKPOINT=fixture['checkpoint'],
                 IMAGE=osp.join(fixture['images'], '00_ant', 'a.png'))
    exec(compile(ast.Module(body=body, type_ignores=[]), DOC, 'exec'), scope)
    assert isinstance(scope['result'], LocalizationResult)
    assert scope['result'].pred_scores.shape == (3, )
    assert '(3,)' in capsys.readouterr().out
