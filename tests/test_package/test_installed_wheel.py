"""The wheel carries the configs: installed outside the repository (the editable install
out of the way), the package is imported from there, an installed config loads, and a
config in another folder inherits it through :func:`tedloc_mm.config_path`."""
import json
import os
import os.path as osp
import shutil
import subprocess
import sys
import zipfile

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

PROBE = r"""
import json, os, sys
import tedloc_mm
from mmengine.config import Config
out = dict(file=tedloc_mm.__file__, config_root=tedloc_mm.CONFIG_ROOT)
cfg = Config.fromfile(tedloc_mm.config_path('tedloc_eva-l_cub.py'))
out['installed'] = dict(scope=cfg.default_scope, head=cfg.model.head.type,
                        classes=cfg.model.head.num_classes,
                        batch=cfg.train_dataloader.batch_size)
mine = os.path.join(sys.argv[1], 'my_tedloc_cub.py')
with open(mine, 'w') as f:
    f.write(f"_base_ = [{tedloc_mm.config_path('tedloc_eva-l_cub.py')!r}]\n"
            "model = dict(head=dict(num_classes=7))\n"
            "train_dataloader = dict(batch_size=4)\n")
cfg = Config.fromfile(mine)
out['inherited'] = dict(head=cfg.model.head.type, classes=cfg.model.head.num_classes,
                        batch=cfg.train_dataloader.batch_size,
                        sampler=cfg.train_dataloader.dataset.pipeline[-2]['type'])
from tedloc_mm.model_index import resolve_config
out['model_name'] = os.path.relpath(resolve_config('tedloc_efficientnet-lite0_stamps'),
                                    os.path.dirname(tedloc_mm.__file__))
print(json.dumps(out))
"""


def test_wheel_installs_configs_that_load_and_can_be_inherited(tmp_path):
    wheels, target, work = tmp_path / 'wheels', tmp_path / 'site', tmp_path / 'other_project'
    work.mkdir()
    # build from a copy of the sources: setuptools would reuse a stale build/ folder
    source = tmp_path / 'source'
    shutil.copytree(ROOT, source, symlinks=True, ignore=shutil.ignore_patterns(
        '.git', '.venv', 'build', 'dist', '*.egg-info', 'work_dirs', 'data', '__pycache__',
        'tests', 'docs'))
    subprocess.run([sys.executable, '-m', 'pip', 'wheel', '--no-deps', '--no-build-isolation',
                    '-q', '-w', str(wheels), str(source)], check=True, capture_output=True,
                   timeout=600)
    wheel = next(wheels.glob('tedloc_mm-*.whl'))
    names = zipfile.ZipFile(wheel).namelist()
    assert 'tedloc_mm/configs/tedloc_eva-l_cub.py' in names
    assert 'tedloc_mm/configs/_base_/datasets/wsol_crop224.py' in names
    assert 'tedloc_mm/configs/metafile.yml' in names
    # configs two folders deep, and every metafile
    assert 'tedloc_mm/configs/demo/ablations/tedloc_efficientnet-lite0_lkd_stamps.py' in names
    assert 'tedloc_mm/configs/ablations/metafile.yml' in names
    # the model index ships too: its names work where a config path does
    assert 'tedloc_mm/model-index.yml' in names
    subprocess.run([sys.executable, '-m', 'pip', 'install', '--no-deps', '-q', '--target',
                    str(target), str(wheel)], check=True, capture_output=True, timeout=600)
    # the installed copy first on the path, the checkout nowhere on it: run from another
    # folder, with the repository's root not the current directory
    env = dict(os.environ, PYTHONPATH=str(target))
    proc = subprocess.run([sys.executable, '-c', PROBE, str(work)], cwd=str(work), env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out['file'].startswith(str(target)), out['file']
    assert out['config_root'] == osp.join(str(target), 'tedloc_mm', 'configs')
    assert out['installed'] == dict(scope='tedloc', head='PatchMILHead', classes=200, batch=16)
    assert out['inherited'] == dict(head='PatchMILHead', classes=7, batch=4,
                                    sampler='PseudoLabelSampler')
    assert out['model_name'] == 'configs/demo/tedloc_efficientnet-lite0_stamps.py'
