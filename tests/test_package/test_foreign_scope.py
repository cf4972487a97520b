"""Our configs used from another OpenMMLab project, as docs/en/get_started.md says.

The snippet of the page (the code block after ``<!-- foreign-scope-snippet -->``) is
run as written, with its ``_base_`` pointed at the tiny TeD-Loc training config (same
structure as the installed configs, seconds to train) and its ``default_scope`` as
written ('mmpretrain') and as 'mmseg': ``Runner.from_cfg`` builds it, trains 2
iterations and tests. Nested parts (the backbone, neck and head TeD-Loc builds, the
dataset's transforms) resolve in our scope whatever the caller's; what the Runner
builds is written with its scope prefix in our configs.
"""
import os.path as osp
import re

import pytest
import torch

import tedloc_mm  # noqa: F401
from tiny_tedloc import training_files

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TINY = osp.join(ROOT, 'tests', 'data', 'configs', 'tiny_tedloc_train.py')


def doc_snippet() -> str:
    text = open(osp.join(ROOT, 'docs', 'en', 'get_started.md'), encoding='utf-8').read()
    match = re.search(r'<!-- foreign-scope-snippet -->\n```python\n(.*?)```', text, re.S)
    assert match, 'the snippet marker is gone from get_started.md'
    return match.group(1)


@pytest.fixture(scope='module')
def options(tmp_path_factory):
    return training_files(tmp_path_factory.mktemp('foreign'))


def _config(tmp_path, scope, options, text=None):
    from mmengine.config import Config
    text = text or doc_snippet()
    assert "default_scope = 'mmpretrain'" in text and "type='tedloc.TeDLoc'" in text
    text = re.sub(r"_base_ = \[.*?\]", f'_base_ = [{TINY!r}]', text)
    text = text.replace("default_scope = 'mmpretrain'", f'default_scope = {scope!r}')
    path = tmp_path / f'my_{scope}.py'
    path.write_text(text)
    cfg = Config.fromfile(str(path))
    cfg.merge_from_dict(dict(o.split('=', 1) for o in options))
    cfg.train_cfg.max_iters = cfg.train_cfg.val_interval = 2
    cfg.default_hooks.checkpoint.interval = 2
    cfg.work_dir = str(tmp_path / scope)
    cfg.experiment_name = f'foreign_{scope}_{tmp_path.name}'
    return cfg


@pytest.mark.parametrize('scope', ['mmpretrain', 'mmseg'])
def test_doc_snippet_builds_trains_and_tests_in_a_foreign_scope(tmp_path, options, scope):
    from mmengine.runner import Runner
    cfg = _config(tmp_path, scope, options)
    assert cfg.default_scope == scope
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        runner = Runner.from_cfg(cfg)
        assert type(runner.model).__name__ == 'TeDLoc'
        assert runner.model.head.lambda_img == 2.0  # the snippet's own setting
        runner.train()
        assert osp.isfile(osp.join(cfg.work_dir, 'iter_2.pth'))
        metrics = runner.test()
    finally:
        torch.set_num_threads(threads)
    assert 0 <= metrics['wsol/MaxBoxAccV2'] <= 100 and 'wsol/PxAP' in metrics


def test_a_part_no_registry_knows_names_itself_the_scope_and_the_fix(tmp_path, options):
    from mmengine.runner import Runner
    text = doc_snippet().replace("head=dict(lambda_img=2.0)",
                                 "head=dict(lambda_img=2.0), neck=dict(type='TeDLocDecodr')")
    cfg = _config(tmp_path, 'mmseg', options, text)
    with pytest.raises(KeyError) as err:
        Runner.from_cfg(cfg)
    msg = str(err.value)
    assert "'TeDLocDecodr'" in msg and "scope 'tedloc'" in msg
    assert 'custom_imports' in msg and "'tedloc.' prefix" in msg


def test_one_class_for_every_spelling_of_a_type():
    """Code that looks for a component in a config compares the class the registry
    resolves, whatever the spelling and the caller's scope."""
    from mmengine.registry import DefaultScope

    from tedloc_mm.datasets import PseudoLabelSampler
    from tedloc_mm.registry import MODELS, TRANSFORMS, component_class
    for scope in ('tedloc', 'mmseg'):
        with DefaultScope.overwrite_default_scope(scope):
            assert component_class(TRANSFORMS, 'PseudoLabelSampler') is PseudoLabelSampler
            assert component_class(TRANSFORMS, 'tedloc.PseudoLabelSampler') \
                is PseudoLabelSampler
            assert component_class(TRANSFORMS, PseudoLabelSampler) is PseudoLabelSampler
            assert component_class(MODELS, 'mmpretrain.ImageClassifier').__name__ == \
                'ImageClassifier'
            assert component_class(TRANSFORMS, 'NoSuchSampler') is None


def _runner_built(cfg):
    """(MMEngine root registry, type, the dict's own _scope_) of what the Runner builds."""
    from mmengine import registry as r
    if cfg.get('model'):
        yield r.MODELS, cfg.model
    for name in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        if cfg.get(name):
            yield r.DATASETS, cfg[name].dataset
            if cfg[name].get('sampler'):
                yield r.DATA_SAMPLERS, cfg[name].sampler
    for name in ('val_evaluator', 'test_evaluator'):
        ev = cfg.get(name)
        for metric in (ev if isinstance(ev, list) else [ev] if ev else []):
            yield r.METRICS, metric
    for hook in list((cfg.get('default_hooks') or {}).values()) + list(
            cfg.get('custom_hooks') or []):
        if hook:
            yield r.HOOKS, hook
    wrapper = cfg.get('optim_wrapper')
    if wrapper and wrapper.get('constructor'):
        yield r.OPTIM_WRAPPER_CONSTRUCTORS, dict(type=wrapper.constructor)
    if wrapper and wrapper.get('optimizer'):
        yield r.OPTIMIZERS, wrapper.optimizer
    schedulers = cfg.get('param_scheduler') or []
    for s in (schedulers if isinstance(schedulers, list) else [schedulers]):
        yield r.PARAM_SCHEDULERS, s
    if cfg.get('visualizer'):
        yield r.VISUALIZERS, cfg.visualizer


def test_every_config_names_what_the_runner_builds_so_another_scope_finds_it():
    """Each installed config, inherited by an 'mmpretrain' or an 'mmseg' config: every
    component the Runner builds (model, datasets, samplers, metrics, hooks, optimizer
    constructor, schedulers, visualizer) resolves from that scope, as MMEngine's
    build_from_cfg looks it up (a dict's own _scope_, else the default scope)."""
    import glob

    from mmengine.config import Config

    tedloc_mm.register_all_modules()
    missing = []
    paths = [p for p in glob.glob(osp.join(ROOT, 'tedloc_mm', 'configs', '**', '*.py'),
                                  recursive=True) if '_base_' not in p]
    assert len(paths) >= 39
    for path in paths:
        cfg = Config.fromfile(path)
        for scope in ('mmpretrain', 'mmseg'):
            for registry, item in _runner_built(cfg):
                with registry.switch_scope_and_registry(item.get('_scope_', scope)) as reg:
                    if reg.get(item['type']) is None:
                        missing.append((osp.relpath(path, ROOT), scope, item['type']))
    assert not missing, missing
