"""Fit the linear head of an MMPretrain classifier on a frozen pretrained backbone.

    python tools/train_linear_probe.py CONFIG --work-dir DIR [--cfg-options k=v ...]

The config is an ``ImageClassifier`` (backbone, pooling neck, ``LinearClsHead``) plus
``backbone_checkpoint``: a local file or ``'packaged'`` (the weights a backbone class
ships in an installed package, e.g. EfficientNet-Lite0), loaded as
``FrozenBackbone`` loads it. Features of the train split (``train_dataloader``, read
once in order) and of the val split are computed once; a logistic regression is fitted
on them (``tedloc_mm/engine/linear_probe.py``): with the config's ``probe_c`` when it
sets one (the demo's does: a C picked on val can flip with float noise), else the best
on val of ``probe_c_grid``; the grid's val accuracies are reported either way. Writes ``DIR/linear_probe.pth`` (a full classifier checkpoint) and
``DIR/linear_probe.json`` (accuracies, C).
"""
import argparse
import json
import os
import os.path as osp
import time

import tedloc_mm  # noqa: F401  (the import hooks of tedloc_mm.compat, first)
from tedloc_mm.tool_errors import UserError, add_debug_argument, run_tool  # noqa: E402
from tedloc_mm.model_index import resolve_config
from tedloc_mm.tool_errors import CfgOptionsAction

# torch, MMEngine's Runner and the models are imported in main(), after the arguments


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('config')
    p.add_argument('--work-dir', required=True)
    p.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction)
    add_debug_argument(p)
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    args.config = resolve_config(args.config)
    import torch
    from mmengine.runner import Runner

    from tedloc_mm.engine.linear_probe import extract_pooled_features, fit_linear_probe
    from tedloc_mm.engine.runner_config import build_runner_config
    from tedloc_mm.models.backbones import FrozenBackbone
    cfg = build_runner_config(args.config, args.work_dir, args.cfg_options)
    if 'backbone_checkpoint' not in cfg:
        raise UserError(f"{args.config}: set backbone_checkpoint (a file or 'packaged')")
    start = time.perf_counter()
    train_loader, val_loader = dict(cfg.train_dataloader), cfg.val_dataloader
    train_loader['sampler'] = dict(type='DefaultSampler', shuffle=False)  # each image once
    for key in ('train_dataloader', 'train_cfg', 'optim_wrapper', 'val_dataloader', 'val_cfg',
                'val_evaluator', 'test_dataloader', 'test_cfg', 'test_evaluator'):
        cfg[key] = None  # the Runner only builds the model, logger and seeds here
    runner = Runner.from_cfg(cfg)
    model = runner.model
    # FrozenBackbone's loader (prefix 'backbone.', packaged layouts); it wraps the
    # classifier's own backbone module, so the weights land in the classifier
    FrozenBackbone(model.backbone, checkpoint=cfg.backbone_checkpoint).init_weights()

    train = extract_pooled_features(model, Runner.build_dataloader(train_loader))
    val = extract_pooled_features(model, Runner.build_dataloader(val_loader))
    t_feat = time.perf_counter() - start
    result = fit_linear_probe(train, val, model.head.num_classes,
                              cfg.get('probe_c_grid', (0.01, 0.1, 1.0, 10.0)),
                              c=cfg.get('probe_c', None))
    with torch.no_grad():
        model.head.fc.weight.copy_(torch.from_numpy(result['weight']))
        model.head.fc.bias.copy_(torch.from_numpy(result['bias']))
    os.makedirs(args.work_dir, exist_ok=True)
    ckpt = osp.join(args.work_dir, 'linear_probe.pth')
    torch.save(dict(state_dict=model.state_dict(),
                    meta=dict(linear_probe=dict(C=result['C'], val_acc=result['val_acc']))),
               ckpt)
    report = dict(C=result['C'], C_source=result['C_source'], train_acc=result['train_acc'], val_acc=result['val_acc'],
                  val_acc_per_C=result['val_acc_per_C'], num_train=len(train[1]),
                  num_val=len(val[1]), feature_seconds=round(t_feat, 1),
                  total_seconds=round(time.perf_counter() - start, 1))
    with open(osp.join(args.work_dir, 'linear_probe.json'), 'w') as f:
        json.dump(report, f, indent=2)
    runner.logger.info(f'linear probe: {report}; wrote {ckpt}')


if __name__ == '__main__':
    raise SystemExit(run_tool(main))
