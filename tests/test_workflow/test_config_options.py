"""Options by name (tedloc_mm/workflow/config_options.py): the item is found by what it
is, so a config that reorders its lists still gets each value where it belongs."""
import argparse

import pytest
from mmengine.config import Config, DictAction

from tedloc_mm.workflow import (ConfigOptionError, evaluator_options, hook_options,
                                schedule_options, transform_options)

DEMO = 'configs/demo/tedloc_efficientnet-lite0_stamps.py'


def _merged(cfg, opts):
    p = argparse.ArgumentParser()
    p.add_argument('--o', nargs='+', action=DictAction)
    cfg = Config(cfg.to_dict(), filename=cfg.filename)
    cfg.merge_from_dict(p.parse_args(['--o', *opts]).o)
    return cfg


def _reordered(repo_root, tmp_path):
    """The demo config with its overlay hook moved from default_hooks to the end of its
    custom hooks and a warm-up scheduler before the cosine one."""
    path = tmp_path / 'reordered.py'
    path.write_text(
        f"_base_ = ['{repo_root}/{DEMO}']\n"
        "default_hooks = dict(visualization=dict(\n"
        "    _delete_=True, type='mmpretrain.VisualizationHook', enable=False))\n"
        "custom_hooks = [dict(type='FrozenFeatureCacheHook'),\n"
        "                dict(type='WSOLVisualizationHook', num_images=8, enable_val=False)]\n"
        "param_scheduler = [dict(type='LinearLR', by_epoch=False, begin=0, end=5),\n"
        "    dict(type='CosineAnnealingLR', by_epoch=False, begin=0, end=100, eta_min=0)]\n")
    return Config.fromfile(str(path))


@pytest.mark.parametrize('reorder', [False, True])
def test_values_land_on_the_named_items(repo_root, tmp_path, reorder):
    cfg = _reordered(repo_root, tmp_path) if reorder else Config.fromfile(
        f'{repo_root}/{DEMO}')
    out = _merged(cfg, hook_options(cfg, 'WSOLVisualizationHook', out_dir='/o', num_images=3)
                  + schedule_options(cfg, 30, 15, 15))
    hooks = list(out.custom_hooks) + list(out.default_hooks.values())
    vis = [h for h in hooks if h.type.endswith('WSOLVisualizationHook')]
    assert len(vis) == 1 and vis[0].out_dir == '/o' and vis[0].num_images == 3
    assert all('out_dir' not in h for h in hooks if h is not vis[0])
    # the demo's own config keeps it in default_hooks; the reordered one in custom_hooks
    assert (vis[0] in list(out.custom_hooks)) == reorder
    cosine = [s for s in out.param_scheduler if s.type.endswith('CosineAnnealingLR')]
    assert cosine[0].end == 30
    assert all(s.end == 5 for s in out.param_scheduler
               if s.type.endswith('LinearLR'))  # untouched
    assert (out.train_cfg.max_iters, out.train_cfg.val_interval, out.train_cfg.val_begin,
            out.default_hooks.checkpoint.interval) == (30, 15, 15, 15)


def test_missing_or_ambiguous_item_is_named(repo_root, tmp_path):
    cfg = Config.fromfile(f'{repo_root}/{DEMO}')
    with pytest.raises(ConfigOptionError, match='expected one NoSuchHook, found 0'):
        hook_options(cfg, 'NoSuchHook', out_dir='/o')
    path = tmp_path / 'odd.py'
    path.write_text(f"_base_ = ['{repo_root}/{DEMO}']\nparam_scheduler = [dict(type='LinearLR',"
                    " by_epoch=False, begin=0, end=70)]\n")
    with pytest.raises(ConfigOptionError, match='LinearLR ends at 70, after the 30'):
        schedule_options(Config.fromfile(str(path)), 30, 15, 15)


def test_segmenter_transform_and_metric_by_type(repo_root):
    cfg = Config.fromfile(f'{repo_root}/configs/demo/fcn_frozen-efficientnet-lite0_stamps-seg.py')
    out = _merged(cfg, transform_options(cfg, 'train_dataloader', 'CheckSegLabel',
                                         num_classes=9)
                  + evaluator_options(cfg, 'IoUMetric', output_dir='/p'))
    checks = [t for t in out.train_dataloader.dataset.pipeline if 'CheckSegLabel' in t.type]
    assert [t.num_classes for t in checks] == [9]
    iou = [m for m in out.test_evaluator if m.type.endswith('IoUMetric')]
    assert iou[0].output_dir == '/p'
