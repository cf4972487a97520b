"""tools/analysis_tools/complexity.py on a tiny TeD-Loc; the cost helpers it uses."""
import importlib.util
import json
import os.path as osp

import pytest
import torch
from mmengine.config import Config

import tedloc_mm  # noqa: F401
from tedloc_mm.analysis.complexity import (GradCAMPath, fwd_bwd_factor,
                                       build_random_localizer, load_cam_tower,
                                       measure_latency)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TINY_CFG = osp.join(ROOT, 'tests/data/configs/tiny_tedloc.py')
TINY_TOWER = dict(embed_dim=32,
                  vision_cfg=dict(image_size=64, layers=1, width=32, patch_size=16,
                                  head_width=16),
                  text_cfg=dict(context_length=16, vocab_size=49408, width=32, heads=2,
                                layers=1))


def load_tool():
    path = osp.join(ROOT, 'tools/analysis_tools/complexity.py')
    spec = importlib.util.spec_from_file_location('complexity_tool', path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def linear_and_conv_macs(module, x):
    """Multiply-adds of every Linear / Conv2d, from their output shapes (hooks)."""
    total = [0]

    def hook(m, inp, out):
        if isinstance(m, torch.nn.Linear):
            total[0] += out.numel() * m.in_features
        else:
            k = m.kernel_size[0] * m.kernel_size[1]
            total[0] += out.numel() * m.in_channels // m.groups * k

    handles = [m.register_forward_hook(hook) for m in module.modules()
               if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))]
    with torch.no_grad():
        module(x)
    for h in handles:
        h.remove()
    return total[0]


@pytest.fixture(scope='module')
def report(tmp_path_factory):
    d = tmp_path_factory.mktemp('complexity')
    tower = str(d / 'tedloc-test-cost-tower.json')
    json.dump(TINY_TOWER, open(tower, 'w'))
    out = str(d / 'cost.json')
    # the anchor file of the config does not exist: random anchors are used
    rep = load_tool().main([TINY_CFG, '--num-runs', '2', '--warmup', '1', '--cam-tower',
                            tower, '--out', out, '--depth', '1'])
    assert json.load(open(out)) == json.loads(json.dumps(rep))
    return rep


def test_parameters_total_and_trainable(report):
    model = build_random_localizer(Config.fromfile(TINY_CFG))
    rows = {r['module']: r for r in report['parameters']}
    assert set(rows) == {'backbone', 'neck', 'head', 'total'}
    assert rows['total']['total'] == sum(p.numel() for p in model.parameters())
    assert rows['backbone']['trainable'] == 0
    assert rows['neck']['trainable'] == rows['neck']['total'] == sum(
        p.numel() for p in model.neck.parameters())
    # g is a 1x1 conv D -> 1: D weights + 1 bias
    assert rows['head'] == dict(module='head', total=33, trainable=33)
    assert rows['total']['trainable'] == rows['neck']['total'] + 33


def test_flops_match_hand_counts(report):
    cfg = Config.fromfile(TINY_CFG)
    model = build_random_localizer(cfg)
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    by_module = report['flops_by_module']
    # head: g (1x1 conv, D per pixel) + h = sum_p a_p z_p (D per pixel) + f(h) (D*K)
    pixels, D, K = 16 * 16, 32, 3
    # (FlopAnalyzer's einsum count goes through np.einsum_path's float estimate: 8190
    # for the 8192 of h, so allow a few FLOPs)
    assert by_module['head'] == pytest.approx(2 * pixels * D + D * K, abs=8)
    # backbone: linear / conv multiply-adds + attention matmuls 2 * N^2 * C per layer;
    # FlopAnalyzer adds a few per-element ops (norms, RoPE): within 10 %
    n_tokens, width, layers = 8 * 8 + 1, 64, 2
    hand = linear_and_conv_macs(model.backbone, x) + layers * 2 * n_tokens**2 * width
    assert hand <= by_module['backbone'] <= 1.1 * hand
    tokens = model.backbone(x)
    hand = linear_and_conv_macs(model.neck, tokens)
    assert hand <= by_module['neck'] <= 1.1 * hand
    assert report['flops']['backbone'] == by_module['backbone']
    assert report['flops']['tedloc'] >= sum(by_module.values())
    # Grad-CAM forward: the tiny open_clip tower by hand (64 px, patch 16: 16 patches
    # + class token; width 32, MLP 128, 1 layer, projection 32 -> 32 of the class token)
    n, c, mlp = 17, 32, 128
    conv = 16 * c * 3 * 16 * 16
    hand = (conv + n * c * 3 * c + 2 * n * n * c + n * c * c + 2 * n * c * mlp + c * 32)
    # (+ a few % for the layer norms, which FlopAnalyzer counts too)
    assert hand <= report['flops']['gradcam_forward'] <= 1.05 * hand
    # the Grad-CAM row: the forward times the factor measured on the real call
    factor = report['flops']['gradcam_factor']
    assert report['flops']['gradcam'] == round(factor * report['flops']['gradcam_forward'])
    # CLIP-ES's gradient stops inside the last block: more than a forward, less than
    # the 3x of a full backward (input and weight gradients of every layer)
    assert 1.0 < factor < 3.0


def test_fwd_bwd_factor_by_hand():
    """A bias-free linear layer: forward 2*n*m*k FLOPs (FlopCounterMode counts 2 a
    multiply-add); a full backward adds the input and the weight gradient, 2x that."""
    torch.manual_seed(0)
    lin = torch.nn.Linear(8, 4, bias=False)
    x = torch.randn(5, 8, requires_grad=True)

    def full_backward():
        lin(x).sum().backward()

    def input_gradient_only():
        h = x + 0  # a non-leaf (FlopCounterMode cannot run autograd.grad to a leaf)
        torch.autograd.grad(lin(h).sum(), h)

    assert fwd_bwd_factor(lambda: lin(x), full_backward) == pytest.approx(3.0)
    assert fwd_bwd_factor(lambda: lin(x), input_gradient_only) == pytest.approx(2.0)


def test_gradcam_factor_of_clip_es(tmp_path):
    """CLIP-ES's Grad-CAM backpropagates to the last block's attention input only, so on
    a 2-layer tower its cost is above one forward and below forward + a full backward
    through the last layer (2 x its share, bounded by 2 x the whole forward)."""
    path = str(tmp_path / 'tedloc-test-cost-tower-fb.json')
    tower_cfg = json.loads(json.dumps(TINY_TOWER))
    tower_cfg['vision_cfg']['layers'] = 2
    json.dump(tower_cfg, open(path, 'w'))
    tower, tokenizer, _ = load_cam_tower(path)
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    cam = GradCAMPath(tower, tokenizer)
    factor = fwd_bwd_factor(lambda: tower.visual(x), lambda: cam(x))
    assert 1.0 < factor < 3.0
    # one more layer whose backward is not needed costs forward FLOPs only: the
    # factor of a 4-layer tower is closer to 1
    tower_cfg['vision_cfg']['layers'] = 4
    json.dump(tower_cfg, open(path, 'w'))
    tower4, tokenizer4, _ = load_cam_tower(path)
    cam4 = GradCAMPath(tower4, tokenizer4)
    assert 1.0 < fwd_bwd_factor(lambda: tower4.visual(x), lambda: cam4(x)) < factor


def test_latency_rows_and_tower(report):
    assert set(report['latency']) == {'tedloc', 'backbone', 'gradcam'}
    for v in report['latency'].values():
        assert v['runs'] == 2 and v['min_ms'] > 0
    # the fixture registered the tower's JSON config under its file stem
    tower, _, _ = load_cam_tower('tedloc-test-cost-tower')
    assert report['gradcam_tower']['params'] == sum(p.numel()
                                                    for p in tower.visual.parameters())
    assert report['gradcam_tower']['image_size'] == 64


def test_measure_latency_statistics_from_a_fake_clock(monkeypatch):
    """Each timed call reads the clock before and after: feed it known durations."""
    import tedloc_mm.analysis.complexity as complexity
    # rounds interleave a, b: a takes 3, 1, 2 ms; b takes 10, 30, 20 ms
    durations = iter([3.0, 10.0, 1.0, 30.0, 2.0, 20.0])
    state = dict(start=True, now=100.0)

    def perf_counter():
        if state['start']:
            state['end'] = state['now'] + next(durations) / 1e3
            value = state['now']
        else:
            value = state['now'] = state['end']
        state['start'] = not state['start']
        return value

    monkeypatch.setattr(complexity.time, 'perf_counter', perf_counter)
    out = measure_latency(dict(a=lambda: None, b=lambda: None), warmup=0, runs=3)
    want = dict(a=dict(median_ms=2.0, min_ms=1.0, mean_ms=2.0, std_ms=1.0, runs=3),
                b=dict(median_ms=20.0, min_ms=10.0, mean_ms=20.0, std_ms=10.0, runs=3))
    assert out.keys() == want.keys()
    for k in want:
        assert out[k] == pytest.approx(want[k]), k


def test_measure_latency_warms_up_then_interleaves():
    calls = []
    paths = dict(a=lambda: calls.append('a'), b=lambda: calls.append('b'))
    out = measure_latency(paths, warmup=2, runs=3)
    assert calls == ['a', 'a', 'b', 'b'] + ['a', 'b'] * 3
    assert {k: v['runs'] for k, v in out.items()} == {'a': 3, 'b': 3}
    with pytest.raises(ValueError):
        measure_latency(paths, runs=0)


def test_unknown_tower_is_a_clear_error():
    with pytest.raises(ValueError, match='no-such-tower'):
        load_cam_tower('no-such-tower')
    with pytest.raises(FileNotFoundError, match='missing.json'):
        load_cam_tower('/nonexistent/missing.json')


def test_paper_protocol_warms_each_path_then_averages_its_steps(monkeypatch):
    """Paper §4.3: per path, 20 untimed calls, then the timed steps, their mean; the
    synchronize callable brackets each timed call (a GPU's queue is timed)."""
    import tedloc_mm.analysis.complexity as complexity
    from tedloc_mm.analysis.complexity import paper_protocol_latency
    assert (complexity.PAPER_WARMUP, complexity.PAPER_STEPS) == (20, 1000)
    now = [0.0]
    monkeypatch.setattr(complexity.time, 'perf_counter', lambda: now[0])
    calls, syncs = [], []
    cost = dict(a=iter([5.0] * 20 + [1.0, 2.0, 3.0, 6.0]),   # ms per call, warm-up first
                b=iter([9.0] * 20 + [10.0, 10.0, 10.0, 30.0]))

    def path(name):
        def fn():
            calls.append(name)
            now[0] += next(cost[name]) / 1e3
        return fn

    out = paper_protocol_latency(dict(a=path('a'), b=path('b')), steps=4,
                                 synchronize=lambda: syncs.append(len(calls)))
    assert calls == ['a'] * 24 + ['b'] * 24           # each path alone, warm-up first
    assert out['a'] == pytest.approx(dict(mean_ms=3.0, median_ms=2.5, std_ms=(14 / 3) ** 0.5,
                                          min_ms=1.0, runs=4, warmup=20))
    assert out['b']['mean_ms'] == pytest.approx(15.0)
    assert out['b']['min_ms'] == pytest.approx(10.0)
    # before and after each of the 8 timed calls
    assert syncs == [20, 21, 21, 22, 22, 23, 23, 24, 44, 45, 45, 46, 46, 47, 47, 48]
    with pytest.raises(ValueError, match='steps must be >= 1'):
        paper_protocol_latency(dict(a=path('a')), steps=0)


def test_tool_paper_protocol_option():
    """--protocol paper: 20 warm-up calls and 1000 steps unless given, the mean reported."""
    tool = load_tool()
    args = tool.parse_args([TINY_CFG, '--protocol', 'paper', '--num-runs', '3',
                            '--cam-tower', 'none', '--no-flops'])
    rep = tool.run(args)
    assert rep['protocol'] == 'paper' and rep['warmup'] == 20 and rep['num_runs'] == 3
    assert rep['latency']['tedloc']['runs'] == 3 and rep['latency']['tedloc']['warmup'] == 20
    quick = tool.parse_args([TINY_CFG])
    assert (quick.warmup, quick.num_runs, quick.protocol) == (None, None, 'quick')
