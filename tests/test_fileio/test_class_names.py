"""Smaller holes of issue 16: a class-names file with a repeated name is refused by the
dataset path (naming both lines), and tools/generate_cams.py starts no more image
workers than the machine has cores to spare."""
import os.path as osp

import pytest

import tedloc_mm  # noqa: F401
from checkpoint_payloads import ROOT
from tedloc_mm.datasets import WSOLDataset
from tedloc_mm.embedded_benchmarks.gliders import generate_synthetic_wsol
from tedloc_mm.fileio import ClassNamesError
from tedloc_mm.fileio.class_names import read_class_names
from tedloc_mm.pseudo_labels.generation import default_num_workers


def test_a_repeated_class_name_is_refused_naming_both_lines(tmp_path):
    path = str(tmp_path / 'class_names.txt')
    open(path, 'w').write('cat\ndog\ncrane\nbird\ncrane\n')
    with pytest.raises(ClassNamesError,
                       match=f"^{path}:5: class name 'crane' is already on line 3"):
        read_class_names(path)
    open(path, 'w').write('cat\ndog\ncrane\n\n')  # trailing empty lines are fine
    assert read_class_names(path) == ['cat', 'dog', 'crane']


def test_the_dataset_refuses_a_class_names_file_with_a_repeated_name(tmp_path):
    root = str(tmp_path / 'data')
    generate_synthetic_wsol(root, seed=0, num_classes=3, num_train=0, num_val=1, num_test=0,
                            image_size=32)
    names = osp.join(root, 'metadata', 'class_names.txt')
    first = open(names).read().splitlines()
    assert len(first) == 3 and len(set(first)) == 3
    WSOLDataset(data_root=root, split='val', pipeline=[], test_mode=True)  # as generated
    open(names, 'w').write('\n'.join([first[0], first[1], first[0]]) + '\n')
    with pytest.raises(ClassNamesError, match=f"class_names.txt:3: class name "
                       f"'{first[0]}' is already on line 1"):
        WSOLDataset(data_root=root, split='val', pipeline=[], test_mode=True)


@pytest.mark.parametrize('cpus,workers', [(1, 0), (2, 1), (3, 2), (4, 2), (64, 2)])
def test_default_cam_workers_leave_a_core_to_the_model(cpus, workers):
    assert default_num_workers(cpus) == workers


def test_generate_cams_uses_that_default():
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        'cams_tool_defaults', osp.join(ROOT, 'tools/generate_cams.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    args = tool.parse_args(['classifier', 'cfg.py', 'ckpt.pth', '--data-root', 'd',
                            '--out', 'o'])
    assert args.num_workers is None   # resolved after parsing (no torch for --help)
    assert tool.resolve_num_workers(args.num_workers) == default_num_workers() <= 2
    assert tool.resolve_num_workers(3) == 3
