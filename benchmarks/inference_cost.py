"""Latency ratios of TeD-Loc inference, measured in one run (paper Table 3 / Table 6).

    python benchmarks/inference_cost.py [--config configs/tedloc_eva-l_cub.py]
        [--num-runs 5] [--warmup 1] [--input-size 224] [--cam-tower ViT-L-14]
        [--device cpu] [--threads 2] [--out ratios.json]

Prints the batch-1 latencies (median over interleaved rounds, after warm-up) of

* ``tedloc``: TeD-Loc predict (class + map), encoder + decoder + head;
* ``backbone``: the bare frozen encoder forward;
* ``decoder_head``: decoder + head + map resize on cached encoder tokens (the part
  TeD-Loc adds; explains the first ratio);
* ``gradcam``: a CLIP-ES Grad-CAM map for one class (forward + backward of an
  open_clip image tower with random weights; ``--cam-tower``, default ViT-L-14),

and the two ratios with the goals of the issue: ``tedloc / backbone`` (goal <= 1.15
for EVA-L at 224 px) and ``gradcam / tedloc`` (goal >= 2). Random weights: the cost
does not depend on the values.

Also printed, because CPU wall-clock times are noisy on a shared machine (the load
average is printed with them): the ratios of the fastest run of each path (the run
least disturbed by other processes), ``(backbone + decoder_head) / backbone``, the first
ratio rebuilt from the two parts that are each timed separately, and the same two
ratios in FLOPs (MMEngine's FlopAnalyzer; Grad-CAM forward + backward estimated as
3x its forward), which do not depend on the machine (``--no-flops`` skips them).
"""
import argparse
import json
import os
import os.path as osp
import sys

import tedloc_mm  # noqa: F401  (the import hooks of tedloc_mm.compat, first)
import torch
import torch.nn.functional as F
from mmengine.config import Config

from tedloc_mm.analysis.complexity import (DEFAULT_CAM_TOWER, GradCAMPath, fwd_bwd_factor,
                                       TeDLocPredictPath, build_random_localizer,
                                       count_flops, load_cam_tower, make_paths,
                                       measure_latency)

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
GOAL_TEDLOC_OVER_BACKBONE = 1.15
GOAL_GRADCAM_OVER_TEDLOC = 2.0


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--config', default=osp.join(REPO, 'configs/tedloc_eva-l_cub.py'))
    p.add_argument('--num-runs', type=int, default=5)
    p.add_argument('--warmup', type=int, default=1)
    p.add_argument('--input-size', type=int, default=224)
    p.add_argument('--cam-tower', default=DEFAULT_CAM_TOWER,
                   help='open_clip architecture or JSON model config of the Grad-CAM tower')
    p.add_argument('--device', default='cpu')
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--no-flops', action='store_true', help='skip the FLOP ratios')
    p.add_argument('--out', help='write the numbers to this JSON file')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.device == 'cpu' and args.threads:
        torch.set_num_threads(args.threads)
    cfg = Config.fromfile(args.config)
    model = build_random_localizer(cfg, args.device)
    clip_model, tokenizer, tower = load_cam_tower(args.cam_tower, args.device)
    flops = {}
    if not args.no_flops:  # the tower before GradCAM hooks it
        s = clip_model.visual.image_size
        s = s[0] if isinstance(s, (tuple, list)) else s
        x = torch.randn(1, 3, s, s, device=args.device)
        tower_flops = count_flops(clip_model.visual, x)[0]
    gradcam = GradCAMPath(clip_model, tokenizer)
    if not args.no_flops:
        factor = fwd_bwd_factor(lambda: clip_model.visual(x), lambda: gradcam(x))
        flops['gradcam'] = factor * tower_flops
    paths, inputs = make_paths(model, gradcam, args.input_size, args.device)
    if not args.no_flops:
        flops['tedloc'], by_module = count_flops(TeDLocPredictPath(model), inputs['tedloc'])
        flops['backbone'] = by_module['model.backbone']
    with torch.no_grad():
        tokens = model.backbone(inputs['tedloc'])
    size = inputs['tedloc'].shape[-2:]

    def decoder_head():
        with torch.no_grad():
            logits, fg = model.head(model.neck(tokens))
            return torch.softmax(logits, 1), F.interpolate(
                torch.sigmoid(fg)[:, None], size=size, mode='bilinear', align_corners=False)

    paths['decoder_head'] = decoder_head
    load_before = os.getloadavg()
    lat = measure_latency(paths, warmup=args.warmup, runs=args.num_runs)
    load_after = os.getloadavg()
    med = {k: v['median_ms'] for k, v in lat.items()}
    r1 = med['tedloc'] / med['backbone']
    r2 = med['gradcam'] / med['tedloc']
    print(f'{osp.basename(args.config)} at {args.input_size} px, batch 1, {args.device}, '
          f'{torch.get_num_threads()} thread(s); Grad-CAM tower {tower} at '
          f'{gradcam.image_size} px; median of {args.num_runs} interleaved runs after '
          f'{args.warmup} warm-up; 1-min load average {load_before[0]:.2f} before, '
          f'{load_after[0]:.2f} after ({os.cpu_count()} CPUs)')
    for k in ('tedloc', 'backbone', 'decoder_head', 'gradcam'):
        v = lat[k]
        print(f'  {k:13s} {v["median_ms"]:10.1f} ms  (mean {v["mean_ms"]:.1f}, '
              f'min {v["min_ms"]:.1f}, std {v["std_ms"]:.1f})')
    best = {k: v['min_ms'] for k, v in lat.items()}
    r1_min, r2_min = best['tedloc'] / best['backbone'], best['gradcam'] / best['tedloc']
    print(f'  from the fastest run of each (least disturbed by other load): '
          f'tedloc / backbone = {r1_min:.3f}, gradcam / tedloc = {r2_min:.3f}')
    r1_parts = (med['backbone'] + med['decoder_head']) / med['backbone']
    print(f'  decoder + head share of TeD-Loc: {med["decoder_head"] / med["tedloc"]:.3f}; '
          f'(backbone + decoder_head) / backbone = {r1_parts:.3f}')
    if flops:
        print(f'  FLOPs: tedloc {flops["tedloc"] / 1e9:.2f} G, backbone '
              f'{flops["backbone"] / 1e9:.2f} G, gradcam ~{flops["gradcam"] / 1e9:.2f} G '
              f'(fwd x{flops["gradcam"] / tower_flops:.2f}, measured); tedloc / backbone = '
              f'{flops["tedloc"] / flops["backbone"]:.3f}, gradcam / tedloc = '
              f'{flops["gradcam"] / flops["tedloc"]:.3f}')
    ok1 = r1 <= GOAL_TEDLOC_OVER_BACKBONE
    ok2 = r2 >= GOAL_GRADCAM_OVER_TEDLOC
    print(f'ratio tedloc / backbone  = {r1:.3f}  (goal <= {GOAL_TEDLOC_OVER_BACKBONE}: '
          f'{"met" if ok1 else "NOT met"})')
    print(f'ratio gradcam / tedloc   = {r2:.3f}  (goal >= {GOAL_GRADCAM_OVER_TEDLOC}: '
          f'{"met" if ok2 else "NOT met"})')
    out = dict(config=args.config, input_size=args.input_size, device=args.device,
               threads=torch.get_num_threads(), cam_tower=tower, latency=lat,
               ratio_tedloc_over_backbone=r1, ratio_gradcam_over_tedloc=r2,
               ratio_backbone_plus_decoder_over_backbone=r1_parts, flops=flops,
               ratios_of_fastest_runs=dict(tedloc_over_backbone=r1_min,
                                           gradcam_over_tedloc=r2_min),
               load_average=dict(before=load_before, after=load_after),
               goals_met=dict(tedloc_over_backbone=ok1, gradcam_over_tedloc=ok2))
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(out, f, indent=2)
    return out


if __name__ == '__main__':
    sys.exit(0 if main() else 1)
