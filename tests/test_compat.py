"""Each workaround in tedloc_mm.compat: it acted here, it fixes what it says, it is idempotent."""
import importlib
import sys

import numpy as np
import pytest
import torch

from tedloc_mm import compat


def test_apply_all_is_idempotent_and_reports():
    before = dict(compat.APPLIED)
    after = compat.apply_all()
    assert set(after) == {'torchvision_ops', 'mmcv_ops', 'checkpoint_loading',
                         'cpu_distributed_init'}
    assert after == before  # a second application changes nothing


def test_torchvision_imports_and_c_ops_raise_clearly():
    import torchvision
    from torchvision import transforms
    out = transforms.Resize((8, 8))(torch.rand(3, 16, 16))
    assert out.shape == (3, 8, 8)
    if compat.APPLIED['torchvision_ops']:
        with pytest.raises(RuntimeError, match='torchvision'):
            torchvision.ops.nms(torch.rand(3, 4), torch.rand(3), 0.5)
    # open_clip, timm and mmpretrain.models import torchvision: all must work
    import mmpretrain.models  # noqa: F401
    import open_clip  # noqa: F401
    import timm  # noqa: F401


def test_mmseg_modules_import_and_point_sample_is_mmcv_pure_python():
    for name in ('mmseg.models', 'mmseg.datasets', 'mmseg.apis', 'mmseg.visualization'):
        importlib.import_module(name)
    from mmcv.ops import point_sample
    # point_sample at the exact pixel centres of a 2x2 map returns the map itself
    feats = torch.arange(4.).reshape(1, 1, 2, 2)
    points = torch.tensor([[[0.25, 0.25], [0.75, 0.25], [0.25, 0.75], [0.75, 0.75]]])
    out = point_sample(feats, points, align_corners=False)
    assert torch.allclose(out.flatten(), torch.tensor([0., 1., 2., 3.]))
    if compat.APPLIED['mmcv_ops']:
        from mmcv.ops import sigmoid_focal_loss
        with pytest.raises(RuntimeError, match='compiled MMCV ops'):
            sigmoid_focal_loss(torch.rand(2, 3), torch.tensor([0, 1]), 2.0, 0.25)


def test_runner_style_checkpoint_loads(tmp_path):
    """A checkpoint holding NumPy objects (like a Runner's message hub) loads."""
    from mmengine.logging import HistoryBuffer
    from mmengine.runner.checkpoint import CheckpointLoader
    hb = HistoryBuffer()
    hb.update(np.float64(1.5))
    path = tmp_path / 'iter_1.pth'
    torch.save({'state_dict': {'w': torch.ones(2)},
                'message_hub': {'log_scalars': {'loss': hb}},
                'meta': {'seed': np.int64(3), 'arr': np.zeros(2)}}, path)
    ckpt = CheckpointLoader.load_checkpoint(str(path), map_location='cpu')
    assert torch.equal(ckpt['state_dict']['w'], torch.ones(2))
    assert ckpt['meta']['seed'] == 3
    if compat.APPLIED['checkpoint_loading']:
        # without the workaround torch >= 2.6 refuses this file
        with pytest.raises(Exception, match='[Ww]eights only load failed'):
            torch.load(path, map_location='cpu')


def test_plain_state_dict_still_loads_weights_only(tmp_path, monkeypatch):
    path = tmp_path / 'plain.pth'
    torch.save({'state_dict': {'w': torch.zeros(3)}}, path)
    calls = []
    real_load = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs.get('weights_only'))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, 'load', spy)
    ckpt = compat.load_local_checkpoint(str(path))
    assert torch.equal(ckpt['state_dict']['w'], torch.zeros(3))
    assert calls == [True]  # the safe path sufficed; no unpickling of arbitrary objects


def test_missing_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        compat.load_local_checkpoint(str(tmp_path / 'nope.pth'))


def test_workarounds_do_nothing_when_environment_is_fine(monkeypatch):
    # torchvision already imported -> the op patch must not act again
    assert 'torchvision' in sys.modules
    assert compat.patch_torchvision_ops() is False
    # mmcv.ops already present -> no second stand-in
    assert compat.patch_mmcv_ops() is False
    # our loader already registered -> nothing to do
    assert compat.patch_checkpoint_loading() is False
    assert compat.patch_cpu_distributed_init() is False


def test_cpu_distributed_init_starts_a_gloo_group(tmp_path, free_port, monkeypatch):
    """init_dist('pytorch') works without CUDA (one process, world size 1)."""
    import torch.distributed as dist
    from mmengine.dist import init_dist
    if torch.cuda.is_available():
        pytest.skip('the workaround only acts without CUDA')
    assert compat.APPLIED['cpu_distributed_init']
    for k, v in dict(RANK='0', LOCAL_RANK='0', WORLD_SIZE='1', MASTER_ADDR='127.0.0.1',
                     MASTER_PORT=str(free_port)).items():
        monkeypatch.setenv(k, v)
    init_dist('pytorch', backend='nccl')  # the configs' default is rewritten to gloo
    try:
        assert dist.get_backend() == 'gloo'
        t = torch.ones(2)
        dist.all_reduce(t)
        assert torch.equal(t, torch.ones(2))
    finally:
        dist.destroy_process_group()
