"""Cost of TeD-Loc inference next to its alternatives (paper Table 3 / Table 6).

Shared by ``tools/analysis_tools/complexity.py`` (the table) and
``benchmarks/inference_cost.py`` (the latency ratios). Three paths, batch 1, on a
normalised random image of the input size:

* ``tedloc``: TeD-Loc predict, i.e. encoder + decoder + head, class probabilities
  softmax f(h, .) and the map g(z) resized to the input (what ``mode='predict'``
  computes, without building DataSamples), under ``torch.no_grad``;
* ``backbone``: the bare frozen encoder forward, under ``torch.no_grad``;
* ``gradcam``: a CLIP-ES style Grad-CAM map for one given class (forward + backward
  of an open_clip image tower, :class:`~tedloc_mm.clip.es_cam.
  CLIPESGradCAM`), the way CAM methods produce a map at test time.

Everything is built with random weights (no file is needed): the backbone
checkpoint is dropped, a missing anchor file is replaced by random (K, D)
embeddings. FLOPs come from MMEngine's ``FlopAnalyzer`` (fvcore's counting: one
fused multiply-add = one FLOP); for Grad-CAM only the forward pass can be traced,
so its forward + backward cost is the tower's forward times a factor measured with
torch's own ``FlopCounterMode`` on the real Grad-CAM call (:func:`fwd_bwd_factor`).
The factor is not a constant: CLIP-ES's gradient stops at the last block's attention
input and asks for no weight gradients, so it is well below the 3x of a full backward.
"""
import copy
import os.path as osp
import statistics
import time
from typing import Callable, Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from mmengine.analysis import FlopAnalyzer
from mmengine.config import Config
from mmengine.registry import DefaultScope

from tedloc_mm.registry import MODELS

#: the open_clip tower used for Grad-CAM unless another is asked for (EVA-L's peer)
DEFAULT_CAM_TOWER = 'ViT-L-14'


def fwd_bwd_factor(forward: Callable[[], object], forward_backward: Callable[[], object]) -> float:
    """FLOPs of ``forward_backward()`` over FLOPs of ``forward()``, both counted by
    torch's ``FlopCounterMode`` with gradients enabled (it misses fused attention
    under ``no_grad``, so both calls are counted the same way)."""
    from torch.utils.flop_counter import FlopCounterMode
    counts = []
    for fn in (forward, forward_backward):
        with torch.enable_grad(), FlopCounterMode(display=False) as counter:
            fn()
        counts.append(counter.get_total_flops())
    if counts[0] <= 0:
        raise ValueError('the forward call counted no FLOPs')
    return counts[1] / counts[0]


def build_random_localizer(cfg: Config, device='cpu', seed: int = 0) -> torch.nn.Module:
    """The config's model with random weights, in eval mode (see module doc)."""
    model_cfg = copy.deepcopy(cfg.model)
    if 'checkpoint' in model_cfg.get('backbone', {}):
        model_cfg.backbone.checkpoint = None
    head = model_cfg.get('head', {})
    if head.get('anchor_file') and not osp.isfile(head.anchor_file):
        g = torch.Generator().manual_seed(seed)
        head.anchor_file = None
        head.anchor_embeddings = torch.randn(head.num_classes, head.in_channels, generator=g)
    torch.manual_seed(seed)
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'tedloc')):
        model = MODELS.build(model_cfg)
    return model.to(device).eval()


def parameter_rows(model: torch.nn.Module, depth: int = 1) -> List[Tuple[str, int, int]]:
    """(module name, total, trainable) for each module ``depth`` levels down, and the
    whole model as ``'total'`` (last row). Buffers (e.g. the anchors) are not counted."""
    rows: Dict[str, List[int]] = {}
    for name, p in model.named_parameters():
        key = '.'.join(name.split('.')[:depth])
        r = rows.setdefault(key, [0, 0])
        r[0] += p.numel()
        r[1] += p.numel() if p.requires_grad else 0
    out = [(k, v[0], v[1]) for k, v in rows.items()]
    out.append(('total', sum(v[0] for v in rows.values()), sum(v[1] for v in rows.values())))
    return out


class TeDLocPredictPath(torch.nn.Module):
    """TeD-Loc predict as tensors: (probabilities (B, K), map (B, H, W) at the input)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        logits, fg = self.model(x, mode='tensor')
        fg_map = F.interpolate(torch.sigmoid(fg)[:, None], size=x.shape[-2:],
                               mode='bilinear', align_corners=False)[:, 0]
        return torch.softmax(logits, dim=1), fg_map


def sdpa_flop_jit(inputs, outputs) -> int:
    """FLOPs (multiply-adds) of ``aten::scaled_dot_product_attention``: Q Kᵀ and A V.

    MMEngine 0.10.7's FlopAnalyzer has no handle for it and silently counts 0, which
    drops the attention matmuls of ``nn.MultiheadAttention`` (open_clip's towers):
    for q (..., L, E), k (..., S, E), v (..., S, Ev) it is prod(...) * L * S * (E + Ev).
    """
    from mmengine.analysis.jit_handles import get_shape
    q, k, v = (get_shape(t) for t in inputs[:3])
    batch = 1
    for n in q[:-2]:
        batch *= n
    return batch * q[-2] * k[-2] * (q[-1] + v[-1])


def count_flops(module: torch.nn.Module, x: torch.Tensor) -> Tuple[int, Dict[str, int]]:
    """(total FLOPs, FLOPs of every submodule by dotted name) of ``module(x)`` with
    MMEngine's FlopAnalyzer (warnings about unsupported / unused ops silenced), plus
    a handle for scaled dot-product attention (:func:`sdpa_flop_jit`)."""
    analyzer = FlopAnalyzer(module, (x, ))
    analyzer.set_op_handle('aten::scaled_dot_product_attention', sdpa_flop_jit)
    analyzer.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    analyzer.tracer_warnings('none')
    total = int(analyzer.total())  # traces once; by_module reuses the result
    return total, {k: int(v) for k, v in analyzer.by_module().items()}


def load_cam_tower(tower: str = DEFAULT_CAM_TOWER, device='cpu', seed: int = 0):
    """An open_clip model with random weights: an open_clip architecture name (e.g.
    ``'ViT-L-14'``, ``'ViT-B-16'``) or a JSON model config file (its stem is the
    name; e.g. a tiny tower for tests). Returns (model, tokenizer, name)."""
    import open_clip

    from tedloc_mm.clip.es_cam import build_open_clip
    name = tower
    if tower.endswith('.json'):
        if not osp.isfile(tower):
            raise FileNotFoundError(f'open_clip model config not found: {tower}')
        open_clip.add_model_config(tower)
        name = osp.splitext(osp.basename(tower))[0]
    elif open_clip.get_model_config(tower) is None:
        raise ValueError(f'unknown open_clip architecture {tower!r} (give a name from '
                         f'open_clip.list_models() or a JSON model config file)')
    torch.manual_seed(seed)
    model, tokenizer = build_open_clip(name, None, device=device)
    return model, tokenizer, name


class GradCAMPath:
    """Callable: a CLIP-ES Grad-CAM map (B, S, S) for class 0 of a normalised image."""

    def __init__(self, clip_model, tokenizer, class_names=('object', 'bird', 'dog')):
        from tedloc_mm.clip.es_cam import CLIPESGradCAM
        self.cam = CLIPESGradCAM(clip_model, tokenizer, list(class_names))
        self.visual = clip_model.visual
        size = getattr(self.visual, 'image_size', 224)
        self.image_size = size[0] if isinstance(size, (tuple, list)) else int(size)

    def __call__(self, x):
        return self.cam(x, [0] * x.shape[0])


def measure_latency(paths: Dict[str, Callable[[], object]], warmup: int = 1,
                    runs: int = 5) -> Dict[str, Dict[str, float]]:
    """Wall-clock milliseconds of each zero-argument callable.

    ``warmup`` untimed calls of each, then ``runs`` rounds; within a round the paths
    run one after another (interleaved), so slow drifts of the machine (thermal,
    other load) hit all paths alike and their ratios stay comparable.

    Returns:
        per path: ``mean_ms``, ``median_ms``, ``std_ms``, ``min_ms``, ``runs``.
    """
    if runs < 1:
        raise ValueError(f'runs must be >= 1, got {runs}')
    for fn in paths.values():
        for _ in range(warmup):
            fn()
    times = {k: [] for k in paths}
    for _ in range(runs):
        for name, fn in paths.items():
            t0 = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - t0) * 1e3)
    return {k: dict(mean_ms=statistics.fmean(v), median_ms=statistics.median(v),
                    std_ms=statistics.stdev(v) if len(v) > 1 else 0.0, min_ms=min(v),
                    runs=len(v)) for k, v in times.items()}


#: paper §4.3: "We first conducted 20 warm-up epochs with a batch size of 1, followed by
#: 1,000 inference steps, and calculated the average inference time across these steps."
PAPER_WARMUP, PAPER_STEPS = 20, 1000


def paper_protocol_latency(paths: Dict[str, Callable[[], object]],
                           warmup: int = PAPER_WARMUP, steps: int = PAPER_STEPS,
                           synchronize: Optional[Callable[[], None]] = None
                           ) -> Dict[str, Dict[str, float]]:
    """Wall-clock milliseconds per call, the paper's timing protocol (§4.3).

    Each path on its own, one after another: ``warmup`` untimed calls (the paper's "20
    warm-up epochs with a batch size of 1", read as 20 calls of one image), then
    ``steps`` timed calls; the result is their average (``mean_ms``; median, std, min
    for reference). ``synchronize`` (e.g. ``torch.cuda.synchronize``) runs before the
    clock is read on both sides of each call, so that a GPU's queued work is timed.

    Returns:
        per path: ``mean_ms``, ``median_ms``, ``std_ms``, ``min_ms``, ``runs``,
        ``warmup``.
    """
    if steps < 1 or warmup < 0:
        raise ValueError(f'steps must be >= 1 and warmup >= 0, got {steps}, {warmup}')
    sync = synchronize or (lambda: None)
    out = {}
    for name, fn in paths.items():
        for _ in range(warmup):
            fn()
        times = []
        for _ in range(steps):
            sync()
            t0 = time.perf_counter()
            fn()
            sync()
            times.append((time.perf_counter() - t0) * 1e3)
        out[name] = dict(mean_ms=statistics.fmean(times), median_ms=statistics.median(times),
                         std_ms=statistics.stdev(times) if steps > 1 else 0.0,
                         min_ms=min(times), runs=steps, warmup=warmup)
    return out


def make_paths(model, gradcam: Optional[GradCAMPath], input_size: int, device='cpu',
               seed: int = 0) -> Tuple[Dict[str, Callable], Dict[str, torch.Tensor]]:
    """The zero-argument callables of the three paths and their inputs."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(1, 3, input_size, input_size, generator=g).to(device)
    predict = TeDLocPredictPath(model).eval()

    def tedloc():
        with torch.no_grad():
            return predict(x)

    def backbone():
        with torch.no_grad():
            return model.backbone(x)

    paths = dict(tedloc=tedloc, backbone=backbone)
    inputs = dict(tedloc=x, backbone=x)
    if gradcam is not None:
        xc = torch.randn(1, 3, gradcam.image_size, gradcam.image_size, generator=g).to(device)
        paths['gradcam'] = lambda: gradcam(xc)
        inputs['gradcam'] = xc
    return paths, inputs


def human(n: float, unit: str = '') -> str:
    """1234567 -> '1.23 M' (K, M, G, T)."""
    for div, suffix in ((1e12, 'T'), (1e9, 'G'), (1e6, 'M'), (1e3, 'K')):
        if abs(n) >= div:
            return f'{n / div:.2f} {suffix}{unit}'
    return f'{n:.0f} {unit}'.rstrip()
