"""Each workaround in tedloc_mm.compat: it acted here, exactly when the library it repairs
was first imported; it fixes what it says; it is idempotent; and importing tedloc_mm
patches nothing and imports neither torch nor an OpenMMLab library."""
import importlib
import json
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch

from tedloc_mm import compat
from tedloc_mm.fileio.checkpoint import load_local_checkpoint


# Run in a fresh interpreter that never imports tedloc_mm: for each workaround, does
# the thing it fixes break in this environment? (The order matters: torchvision last,
# since a failed `import torchvision` leaves a half-imported package behind.)
NEED_PROBE = r"""
import json, os, pickle, sys, tempfile
import numpy as np
import torch
assert 'tedloc_mm' not in sys.modules
out = {}
with tempfile.TemporaryDirectory() as d:
    path = os.path.join(d, 'runner_style.pth')
    torch.save({'meta': {'seed': np.int64(3)}}, path)
    try:
        torch.load(path, map_location='cpu')
        out['checkpoint_loading'] = [False, '']
    except pickle.UnpicklingError as e:
        out['checkpoint_loading'] = [True, str(e)[:80]]
os.environ.update(RANK='0', LOCAL_RANK='0', WORLD_SIZE='1', MASTER_ADDR='127.0.0.1',
                  MASTER_PORT='0')
from mmengine.dist import init_dist
try:
    init_dist('pytorch', backend='gloo')
    torch.distributed.destroy_process_group()
    out['cpu_distributed_init'] = [False, '']
except Exception as e:
    out['cpu_distributed_init'] = [True, repr(e)[:200]]
for name, module in (('mmcv_ops', 'mmcv.ops'), ('torchvision_ops', 'torchvision')):
    try:
        __import__(module)
        out[name] = [False, '']
    except Exception as e:
        out[name] = [True, repr(e)[:200]]
print(json.dumps(out))
"""


@pytest.fixture(scope='module')
def needed():
    """Workaround name -> whether this environment breaks without it (measured)."""
    proc = subprocess.run([sys.executable, '-c', NEED_PROBE], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    return {name: flag for name, (flag, _) in out.items()}, out


def _import_the_repaired_libraries():
    import mmcv.ops  # noqa: F401
    import mmengine.dist.utils  # noqa: F401
    import mmengine.runner.checkpoint  # noqa: F401
    import torchvision  # noqa: F401


def test_each_workaround_acted_exactly_where_needed(needed):
    need, details = needed
    _import_the_repaired_libraries()
    assert set(need) == set(compat.APPLIED) == {'torchvision_ops', 'mmcv_ops',
                                                'checkpoint_loading', 'cpu_distributed_init'}
    assert compat.APPLIED == need, details


def _patch_state():
    from mmengine.dist import utils as dist_utils
    from mmengine.runner.checkpoint import CheckpointLoader
    return dict(keep_alive=list(compat._KEEP_ALIVE), mmcv_ops=sys.modules.get('mmcv.ops'),
                loader=CheckpointLoader._schemes.get(''),
                init_dist=dist_utils._init_dist_pytorch)


def test_apply_all_is_idempotent_and_reports():
    before_state, before = _patch_state(), dict(compat.APPLIED)
    # each workaround, applied again, reports that it did nothing ...
    for fn in (compat.patch_torchvision_ops, compat.patch_mmcv_ops,
               compat.patch_checkpoint_loading, compat.patch_cpu_distributed_init):
        assert fn() is False, fn.__name__
    # ... and did nothing: the same objects are installed as after the first time
    assert compat.apply_all() == before
    after_state = _patch_state()
    assert after_state.keys() == before_state.keys()
    for key in before_state:
        if key == 'keep_alive':
            assert after_state[key] == before_state[key]
        else:
            assert after_state[key] is before_state[key], key


def test_torchvision_imports_and_c_ops_raise_clearly(needed):
    import torchvision
    from torchvision import transforms
    out = transforms.Resize((8, 8))(torch.rand(3, 16, 16))
    assert out.shape == (3, 8, 8)
    # the op nms raises our clear error exactly where the workaround was needed
    # (a working torchvision computes it: 2 boxes, the overlapping third suppressed).
    # torch.ops.torchvision.nms is the schema the workaround declares;
    # torchvision.ops.nms checks for the C extension first and raises its own message.
    boxes = torch.tensor([[0., 0, 10, 10], [20, 20, 30, 30], [0, 0, 10, 9]])
    try:
        kept = torch.ops.torchvision.nms(boxes, torch.tensor([0.9, 0.8, 0.7]), 0.5)
        clear_error = False
        assert kept.tolist() == [0, 1]
    except RuntimeError as e:
        clear_error = 'torchvision wheel was built' in str(e)
    assert clear_error == needed[0]['torchvision_ops']
    # open_clip, timm and mmpretrain.models import torchvision: all must work
    import mmpretrain.models  # noqa: F401
    import open_clip  # noqa: F401
    import timm  # noqa: F401


def test_mmseg_modules_import_and_point_sample_is_mmcv_pure_python(needed):
    for name in ('mmseg.models', 'mmseg.datasets', 'mmseg.apis', 'mmseg.visualization'):
        importlib.import_module(name)
    from mmcv.ops import point_sample
    # point_sample at the exact pixel centres of a 2x2 map returns the map itself
    feats = torch.arange(4.).reshape(1, 1, 2, 2)
    points = torch.tensor([[[0.25, 0.25], [0.75, 0.25], [0.25, 0.75], [0.75, 0.75]]])
    out = point_sample(feats, points, align_corners=False)
    assert torch.allclose(out.flatten(), torch.tensor([0., 1., 2., 3.]))
    from mmcv.ops import sigmoid_focal_loss
    try:
        sigmoid_focal_loss(torch.rand(2, 3), torch.tensor([0, 1]), 2.0, 0.25)
        clear_error = False
    except RuntimeError as e:
        clear_error = 'compiled MMCV ops' in str(e)
    assert clear_error == needed[0]['mmcv_ops']


def test_runner_style_checkpoint_loads(tmp_path, needed):
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
    # torch's own default refuses this file exactly where the workaround was needed
    try:
        torch.load(path, map_location='cpu')
        refused = False
    except pickle.UnpicklingError as e:
        refused = 'Weights only load failed' in str(e)
    assert refused == needed[0]['checkpoint_loading']


def test_plain_state_dict_still_loads_weights_only(tmp_path, monkeypatch):
    path = tmp_path / 'plain.pth'
    torch.save({'state_dict': {'w': torch.zeros(3)}}, path)
    calls = []
    real_load = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs.get('weights_only'))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, 'load', spy)
    ckpt = load_local_checkpoint(str(path))
    assert torch.equal(ckpt['state_dict']['w'], torch.zeros(3))
    assert calls == [True]  # the safe path sufficed; no unpickling of arbitrary objects


def test_missing_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        load_local_checkpoint(str(tmp_path / 'nope.pth'))


def test_workarounds_do_nothing_when_environment_is_fine(monkeypatch):
    # torchvision already imported (here, whatever test ran before on this worker)
    # -> the op patch must not act again
    import mmcv.ops  # noqa: F401  (the stand-in, through the import hook)
    import torchvision  # noqa: F401
    assert 'torchvision' in sys.modules
    assert compat.patch_torchvision_ops() is False
    # mmcv.ops already present -> no second stand-in
    assert compat.patch_mmcv_ops() is False
    # our loader already registered -> nothing to do
    assert compat.patch_checkpoint_loading() is False
    assert compat.patch_cpu_distributed_init() is False


def test_cpu_distributed_init_starts_a_gloo_group(tmp_path, monkeypatch):
    """init_dist('pytorch') works without CUDA (one process, world size 1)."""
    import torch.distributed as dist
    from mmengine.dist import init_dist
    if torch.cuda.is_available():
        pytest.skip('the workaround only acts without CUDA')
    for k, v in dict(RANK='0', LOCAL_RANK='0', WORLD_SIZE='1', MASTER_ADDR='127.0.0.1',
                     MASTER_PORT='0').items():  # the store binds a port the OS picks
        monkeypatch.setenv(k, v)
    init_dist('pytorch', backend='nccl')  # the configs' default is rewritten to gloo
    try:
        assert dist.get_backend() == 'gloo'
        t = torch.ones(2)
        dist.all_reduce(t)
        assert torch.equal(t, torch.ones(2))
    finally:
        dist.destroy_process_group()


# A fresh interpreter: what `import tedloc_mm` does, and when each workaround acts.
WHEN_PROBE = r"""
import json, sys
before = set(sys.modules)
import tedloc_mm
from tedloc_mm import compat
from tedloc_mm.fileio.checkpoint import load_local_checkpoint
out = dict(after_import=dict(compat.APPLIED),
           heavy=sorted(m for m in ('torch', 'torchvision', 'mmengine', 'mmcv',
                                    'mmpretrain', 'mmseg', 'open_clip', 'timm')
                        if m in sys.modules and m not in before))
import torch
out['after_torch'] = dict(compat.APPLIED)
import mmengine.runner
out['after_mmengine_runner'] = dict(compat.APPLIED)
import mmpretrain.models
out['after_mmpretrain_models'] = dict(compat.APPLIED)
import mmseg.models
out['after_mmseg_models'] = dict(compat.APPLIED)
print(json.dumps(out))
"""


def _probe(code):
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_importing_tedloc_mm_patches_nothing_until_each_library_is_imported(needed):
    need, _ = needed
    out = _probe(WHEN_PROBE)
    assert out['after_import'] == {} and out['heavy'] == []
    assert out['after_torch'] == {}            # torch alone: nothing to repair
    # mmengine.runner imports its checkpoint module and mmengine.dist: those two acted
    assert out['after_mmengine_runner'] == {k: need[k] for k in ('checkpoint_loading',
                                                               'cpu_distributed_init')}
    # mmpretrain.models imports torchvision and (guarded) mmcv.ops: now all four acted,
    # each as this environment needs, and mmseg.models imports without more
    assert out['after_mmpretrain_models'] == need
    assert out['after_mmseg_models'] == need


def test_libraries_imported_before_tedloc_mm_are_patched_at_its_import(needed):
    """A foreign project that imported MMEngine's Runner first (its tools do) still gets
    the safe checkpoint loader once `custom_imports` imports tedloc_mm."""
    out = _probe(r"""
import json
from mmengine.runner.checkpoint import CheckpointLoader
first = CheckpointLoader._schemes.get('').__module__
import tedloc_mm
from tedloc_mm import compat
from tedloc_mm.fileio.checkpoint import load_local_checkpoint
print(json.dumps(dict(first=first, now=CheckpointLoader._schemes.get('').__module__,
                      applied=compat.APPLIED)))
""")
    assert out['first'] == 'mmengine.runner.checkpoint'
    assert out['now'] == 'tedloc_mm.fileio.checkpoint'
    assert out['applied']['checkpoint_loading'] == needed[0]['checkpoint_loading']


def test_the_import_hooks_are_installed_once():
    hooks = [f for f in sys.meta_path if isinstance(f, compat.ImportHooks)]
    assert len(hooks) == 1
    assert compat.install() is hooks[0]
