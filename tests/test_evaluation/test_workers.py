"""Worker threads of the box evaluation: map_in_threads, WSOLMetric(workers=...)."""
import numpy as np
import pytest
import torch

from tedloc_mm.evaluation import WSOLMetric, map_in_threads
from tedloc_mm.evaluation.parallel import chunk_bounds


def test_map_in_threads_order_chunks_and_progress():
    done = []
    out = map_in_threads(lambda i: i * i, 23, workers=2, progress=done.append)
    assert out == [i * i for i in range(23)]
    assert sum(done) == 23 and len(done) == len(chunk_bounds(23, 2))
    # chunks cover every index once, in order
    assert [i for r in chunk_bounds(101, 2) for i in r] == list(range(101))
    assert map_in_threads(lambda i: i, 0, workers=2) == []
    with pytest.raises(ValueError, match='workers must be >= 1'):
        map_in_threads(lambda i: i, 3, workers=0)


def _samples(n, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        m = torch.from_numpy(rng.random((8, 8))).float()
        m = torch.nn.functional.interpolate(m[None, None], size=(64, 64), mode='bicubic')[0, 0]
        x0, y0 = rng.integers(0, 30, 2)
        box = np.array([[x0, y0, x0 + rng.integers(10, 30), y0 + rng.integers(10, 30)]], float)
        out.append(dict(pred_map=m, pred_score=torch.from_numpy(rng.random(6)),
                        gt_label=torch.tensor([i % 6]), img_id=f'img{i}', img_shape=(64, 64),
                        ori_shape=(64, 64), ori_gt_bboxes=box))
    return out


def test_wsol_metric_workers_identical():
    samples = _samples(24)
    results = []
    for workers in (1, 2):
        metric = WSOLMetric(workers=workers)
        metric.process({}, samples[:12])
        metric.process({}, samples[12:])
        results.append(metric.evaluate(len(samples)))
    assert results[0] == results[1]
    assert 0 < results[0]['wsol/MaxBoxAccV2'] < 100
    bad = _samples(6)
    bad[3]['pred_map'] = torch.zeros(2, 2, 2)
    with pytest.raises(ValueError, match='image img3'):
        WSOLMetric(workers=2).process({}, bad)
