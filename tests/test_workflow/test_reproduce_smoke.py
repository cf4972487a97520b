"""tools/reproduce_paper.py --smoke: the whole CUB chain on CPU with the paper config's
model unchanged (EVA-01-L/14, CLIP-ES ViT-B/16, the ViT-L-14 text tower, K = 200,
d = 768) on random-weight files in the real formats and a 6-image CUB layout; only the
batch, the schedule (2 epochs of 1 iteration, validated after each) and the splits
shrink. Each step's output is checked. Slow (minutes): EVA-L and ViT-L-14 on CPU."""
import json
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group('reproduce_smoke')]
REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


@pytest.fixture(scope='module')
def smoke(tmp_path_factory):
    d = str(tmp_path_factory.mktemp('smoke'))
    env = dict(os.environ, HF_HUB_OFFLINE='1', PYTHONPATH=REPO)
    proc = subprocess.run([sys.executable, 'tools/reproduce_paper.py', '--smoke', d],
                          cwd=REPO, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return dict(dir=d, work=osp.join(d, 'work'), out=proc.stdout)


def _state(path):
    from tedloc_mm.fileio.checkpoint import load_local_checkpoint
    return load_local_checkpoint(path, map_location='cpu')


def test_says_what_shrinks_and_writes_the_table(smoke):
    assert 'SMOKE RUN (configs/tedloc_eva-l_cub.py, model unchanged' in smoke['out']
    table = json.load(open(osp.join(smoke['work'], 'results', 'table.json')))
    metrics = json.load(open(osp.join(smoke['work'], 'results', 'test_metrics.json')))
    assert table['ours']['MaxBoxAcc'] == metrics['wsol/MaxBoxAcc']
    assert table['paper']['MaxBoxAcc'] == 98.7 and 'SMOKE RUN' in table['note']
    steps = sorted(os.listdir(osp.join(smoke['work'], 'steps')))
    assert steps == sorted(f'{s}.json' for s in (
        'smoke_inputs', 'metadata', 'encoder', 'anchors', 'cams', 'train', 'test_train'))


def test_cam_store_is_complete(smoke):
    from tedloc_mm.fileio.cam_store import CAMStore
    from tedloc_mm.fileio.wsol_metadata import read_wsol_split
    meta = osp.join(smoke['work'], 'data', 'metadata')
    ids = [i['img_id'] for i in read_wsol_split(osp.join(meta, 'train'))]
    assert len(ids) == 2
    store = CAMStore(osp.join(smoke['work'], 'cams', 'train'))
    assert sorted(store.ids()) == sorted(ids)


def _gram_schmidt(e):
    """Rows of e (float64) orthonormalised in order (modified Gram-Schmidt)."""
    q = np.zeros_like(e)
    for k in range(len(e)):
        v = e[k].copy()
        for j in range(k):
            v -= (q[j] @ v) * q[j]
        q[k] = v / np.linalg.norm(v)
    return q


def test_trained_model_is_the_paper_model_with_qr_anchors(smoke):
    work = osp.join(smoke['work'], 'train')
    best = [f for f in os.listdir(work) if f.startswith('best_')]
    ckpt = _state(osp.join(work, best[0]))
    sd = ckpt['state_dict']
    anchors = sd['head.anchors'].double().numpy()
    assert anchors.shape == (200, 768)                             # K = 200, d = 768
    assert np.allclose(anchors @ anchors.T, np.eye(200), atol=1e-5)
    emb = torch.load(osp.join(smoke['work'], 'anchors.pth'), weights_only=True)['embeddings']
    assert np.allclose(anchors, _gram_schmidt(emb.double().numpy()), atol=1e-4)
    # lean: no frozen encoder in the file; the decoder maps 1024 EVA-L channels to 768
    assert not any(k.startswith('backbone.') for k in sd)
    assert any(v.shape[:2] == (768, 1024) or v.shape[:2] == (256, 1024) for k, v in sd.items()
               if k.startswith('neck.')), [(k, v.shape) for k, v in sd.items()][:8]


def test_best_checkpoint_chosen_on_val_maxboxacc_among_two(smoke):
    work = osp.join(smoke['work'], 'train')
    scalars = [osp.join(r, f) for r, _, fs in os.walk(work) for f in fs
               if f == 'scalars.json' and not osp.relpath(r, work).startswith('test')]
    assert len(scalars) == 1, scalars
    rows = [json.loads(line) for line in open(scalars[0])]
    vals = [(r['step'], r['wsol/MaxBoxAcc']) for r in rows if 'wsol/MaxBoxAcc' in r]
    assert [s for s, _ in vals] == [1, 2]                          # epochs 1 and 2
    first_best = max(vals, key=lambda sv: (sv[1], -sv[0]))[0]      # ties: the first kept
    best = [f for f in os.listdir(work) if f.startswith('best_')]
    assert best == [f'best_wsol_MaxBoxAcc_epoch_{first_best}.pth']


def test_validation_and_test_thresholds(smoke):
    from mmengine.config import Config
    test_cfg = [osp.join(r, f) for r, _, fs in os.walk(osp.join(smoke['work'], 'train', 'test'))
                for f in fs if f == 'tedloc_eva-l_cub.py']
    cfg = Config.fromfile(test_cfg[0])
    assert cfg.test_evaluator.cam_curve_interval == 0.001
    assert cfg.val_evaluator.cam_curve_interval == 0.004
    metrics = json.load(open(osp.join(smoke['work'], 'results', 'test_metrics.json')))
    assert 0 <= metrics['wsol/MaxBoxAcc'] <= 100
