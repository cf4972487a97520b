"""tools/reproduce_paper.py --check: every input checked before any long step, all
problems named at once (one line each, with the fix), exit 2; good inputs pass.

The weight files here hold only the tensors the checks read (the patch embedding, the
text projection, one small tensor per block), in the real formats: a safetensors file
as timm publishes EVA, an OpenAI-style TorchScript archive, an open_clip state dict."""
import importlib.util
import os
import os.path as osp

import pytest
import torch

from tedloc_mm.workflow.smoke import write_smoke_cub

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _tool():
    spec = importlib.util.spec_from_file_location(
        'reproduce_paper_tool', osp.join(ROOT, 'tools', 'reproduce_paper.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _eva(path, dims=1024, layers=24, patch=14):
    from safetensors.torch import save_file
    state = {'patch_embed.proj.weight': torch.zeros(dims, 3, patch, patch)}
    state.update({f'blocks.{i}.norm1.weight': torch.zeros(dims) for i in range(layers)})
    save_file(state, str(path))


def _openai_archive(path, width=768, patch=16, layers=12):
    root = torch.nn.Module()
    visual = torch.nn.Module()
    root.add_module('visual', visual)
    conv1 = torch.nn.Module()
    conv1.register_buffer('weight', torch.zeros(width, 3, patch, patch))
    visual.add_module('conv1', conv1)
    tr, blocks = torch.nn.Module(), torch.nn.Module()
    for i in range(layers):
        b, ln = torch.nn.Module(), torch.nn.Module()
        ln.register_buffer('weight', torch.zeros(width))
        b.add_module('ln_1', ln)
        blocks.add_module(str(i), b)
    tr.add_module('resblocks', blocks)
    visual.add_module('transformer', tr)
    torch.jit.save(torch.jit.script(root), str(path))


def _open_clip_text(path, width, embed, layers):
    state = {'text_projection': torch.zeros(width, embed)}
    state.update({f'transformer.resblocks.{i}.ln_1.weight': torch.zeros(width)
                  for i in range(layers)})
    torch.save(state, str(path))


@pytest.fixture(scope='module')
def weights(tmp_path_factory):
    d = tmp_path_factory.mktemp('weights')
    _eva(d / 'eva.safetensors')
    _eva(d / 'vit-b.safetensors', dims=768, layers=12, patch=16)  # another model
    _openai_archive(d / 'ViT-B-16.pt')
    _open_clip_text(d / 'vit-l-14.bin', 768, 768, 12)
    _open_clip_text(d / 'vit-h-14.bin', 1024, 1024, 24)
    return d


def _cub_args(data, weights, work, eva='eva.safetensors'):
    return ['--dataset', 'cub', '--data-root', str(data), '--val-per-class', '1',
            '--eva-checkpoint', str(weights / eva), '--clip-checkpoint',
            str(weights / 'ViT-B-16.pt'), '--text-checkpoint', str(weights / 'vit-l-14.bin'),
            '--work-dir', str(work), '--check']


def test_good_cub_inputs_pass(tmp_path, weights, capsys):
    write_smoke_cub(str(tmp_path / 'CUB_200_2011'))
    assert _tool().main(_cub_args(tmp_path / 'CUB_200_2011', weights, tmp_path / 'w')) == 0
    assert 'inputs OK' in capsys.readouterr().out
    assert not osp.exists(tmp_path / 'w' / 'steps')  # --check ran nothing


def test_three_problems_named_at_once(tmp_path, weights, capsys):
    data = tmp_path / 'CUB_200_2011'
    write_smoke_cub(str(data))
    os.remove(data / 'bounding_boxes.txt')                       # a missing file
    lines = (data / 'classes.txt').read_text().splitlines()
    (data / 'classes.txt').write_text('\n'.join(lines[:199]) + '\n')  # 199 classes
    code = _tool().main(_cub_args(data, weights, tmp_path / 'w', eva='vit-b.safetensors'))
    err = capsys.readouterr().err
    assert code == 2
    problems = [ln for ln in err.splitlines() if ln.startswith('  - ')]
    assert len(problems) == 3, err
    assert err.splitlines()[0] == '3 problem(s) with the inputs; nothing was run:'
    missing, classes, eva = problems
    assert 'bounding_boxes.txt is missing' in missing and 'unpack' in missing
    assert 'classes.txt lists 199 classes' in classes and 'num_classes is 200' in classes
    assert 'vit-b.safetensors' in eva and 'patch embedding (768, 3, 16, 16), 12 blocks' in eva
    assert '(1024, 3, 14, 14) and 24 blocks' in eva and 'eva_large_patch14_196' in eva


def test_wrong_text_tower_and_missing_files(tmp_path, weights, capsys):
    data = tmp_path / 'CUB_200_2011'
    write_smoke_cub(str(data))
    args = _cub_args(data, weights, tmp_path / 'w')
    args[args.index('--text-checkpoint') + 1] = str(weights / 'vit-h-14.bin')
    args[args.index('--clip-checkpoint') + 1] = str(tmp_path / 'nowhere.pt')
    assert _tool().main(args) == 2
    problems = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith('  - ')]
    assert len(problems) == 2, problems
    assert 'nowhere.pt: no such file' in problems[0] and 'ViT-B-16.pt' in problems[0]
    assert 'not the text tower of ViT-L-14' in problems[1]
    assert 'text_projection (1024, 1024), 24 blocks' in problems[1]


def _ilsvrc(root, num_classes=1000, drop=None, bad_label=False):
    meta = root / 'metadata'
    img = 'train/n01440764/n01440764_10026.JPEG'
    lines = {'image_ids.txt': f'{img}\n', 'class_labels.txt': f'{img},0\n',
             'image_sizes.txt': f'{img},250,200\n', 'localization.txt': f'{img},1,2,30,40\n'}
    for split in ('train', 'val', 'test'):
        os.makedirs(meta / split)
        for name, text in lines.items():
            if (split, name) != drop:
                if bad_label and split == 'test' and name == 'class_labels.txt':
                    text = f'{img},1000\n'
                (meta / split / name).write_text(text)
    (meta / 'class_names.txt').write_text(''.join(f'class {k}\n' for k in range(num_classes)))


def test_ilsvrc_check(tmp_path, weights, capsys):
    tool = _tool()
    args = ['--dataset', 'ilsvrc', '--eva-checkpoint', str(weights / 'eva.safetensors'),
            '--clip-checkpoint', str(weights / 'ViT-B-16.pt'), '--text-checkpoint',
            str(weights / 'vit-h-14.bin'), '--work-dir', str(tmp_path / 'w'), '--check']
    _ilsvrc(tmp_path / 'good')
    assert tool.main(args + ['--data-root', str(tmp_path / 'good')]) == 0
    _ilsvrc(tmp_path / 'bad', num_classes=999, drop=('val', 'localization.txt'),
            bad_label=True)
    args[args.index('--text-checkpoint') + 1] = str(weights / 'vit-l-14.bin')
    assert tool.main(args + ['--data-root', str(tmp_path / 'bad')]) == 2
    problems = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith('  - ')]
    assert len(problems) == 4, problems
    assert 'val lacks localization.txt' in problems[0]
    assert 'test/class_labels.txt:1' in problems[1] and '1000' in problems[1]
    assert 'class_names.txt has 999 names' in problems[2] and '1000' in problems[2]
    assert 'not the text tower of ViT-H-14' in problems[3]


def test_gpus_pick_the_nxbm_config_and_the_dist_scripts(tmp_path, weights):
    """--gpus N: the NxbM config whose N x M is the paper's batch, trained and tested with
    tools/dist_train.sh / dist_test.sh; a killed training is resumed (its partial path)."""
    from mmengine.config import Config
    tool = _tool()
    for dataset, batch in (('cub', 16), ('ilsvrc', 32)):
        for gpus in (2, 4, 8):
            cfg = Config.fromfile(osp.join(ROOT, tool.paper_config(dataset, gpus)))
            assert cfg.train_dataloader.batch_size * gpus == batch, (dataset, gpus)
    with pytest.raises(SystemExit, match='--gpus 3: no configs/tedloc_eva-l_3xbM_cub.py'):
        tool.paper_config('cub', 3)

    write_smoke_cub(str(tmp_path / 'CUB_200_2011'))
    args = tool.parse_args(_cub_args(tmp_path / 'CUB_200_2011', weights, tmp_path / 'w')
                           + ['--gpus', '4'])
    plan = tool.Plan(args)
    calls = []
    work = osp.join(plan.w, 'train')
    os.makedirs(work)
    open(osp.join(work, 'best_wsol_MaxBoxAcc_epoch_3.pth'), 'w').close()
    tool.train_and_test(plan, lambda *a, **kw: calls.append((a, kw)), plan.config, 'train',
                        'tedloc', 5, 6, str(tmp_path / 'm.json'))
    (_, name, _, train), kw = calls[0]
    run_cfg = osp.join(plan.w, 'configs', 'tedloc_eva-l_4xb4-50e_cub.py')
    assert train[:4] == ['bash', 'tools/dist_train.sh', run_cfg, '4']
    assert kw['partial'] == osp.join(work, 'last_checkpoint')
    assert f'model.head.anchor_file={plan.anchors}' in train
    (_, _, _, test, outputs), _ = calls[1]
    assert test[:5] == ['bash', 'tools/dist_test.sh', run_cfg,
                        osp.join(work, 'best_wsol_MaxBoxAcc_epoch_3.pth'), '4']
    written = Config.fromfile(run_cfg)  # the NxbM config plus lean checkpoints
    assert written.train_dataloader.batch_size == 4 and written.sync_bn == 'torch'
    assert [h['type'] for h in written.custom_hooks][-1] == 'LeanCheckpointHook'
