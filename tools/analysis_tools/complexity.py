"""Parameters, FLOPs and latency of TeD-Loc vs. the bare backbone vs. CLIP-ES Grad-CAM.

    python tools/analysis_tools/complexity.py CONFIG [--input-size 224]
        [--num-runs 10] [--warmup 2] [--protocol quick|paper] [--device cpu] [--threads 2]
        [--cam-tower ViT-L-14 | --cam-tower tiny_tower.json | --cam-tower none]
        [--no-flops] [--out cost.json]

Builds the config's model with random weights (no checkpoint or anchor file
needed), prints the parameters of each module (total / trainable), then a table
like the paper's Table 3: #Params, FLOPs (MMEngine's FlopAnalyzer; one multiply-add
= one FLOP) and batch-1 latency (``--warmup`` untimed calls, then ``--num-runs``
interleaved timed rounds) of TeD-Loc predict (class + map), the frozen backbone
forward, and a CLIP-ES Grad-CAM map for one class (forward + backward of an open_clip
image tower with random weights; ``--cam-tower`` picks the architecture, default
ViT-L-14, the CLIP tower of EVA-L's size). See ``tedloc_mm/analysis/complexity.py``.

``--protocol paper`` times as the paper's §4.3 says ("20 warm-up epochs with a batch
size of 1, followed by 1,000 inference steps, and calculated the average inference
time across these steps"): each path alone, 20 untimed calls, 1,000 timed ones, the
mean reported (on a GPU synchronised around each call).
"""
import argparse
import json
import os
import os.path as osp

import tedloc_mm  # noqa: F401  (the import hooks of tedloc_mm.compat, first)
from tedloc_mm.tool_errors import add_debug_argument, check_device, run_tool  # noqa: E402
from tedloc_mm.tool_errors import CfgOptionsAction


def _heavy_imports():
    """torch, MMEngine and the measuring code, imported after the arguments are parsed
    (so that --help answers at once), as module globals for the functions below."""
    global torch, Config, DEFAULT_CAM_TOWER, GradCAMPath, fwd_bwd_factor, TeDLocPredictPath
    global build_random_localizer, count_flops, human, load_cam_tower, make_paths
    global measure_latency, paper_protocol_latency, parameter_rows
    import torch
    from mmengine.config import Config

    from tedloc_mm.analysis.complexity import (DEFAULT_CAM_TOWER, GradCAMPath,
                                               TeDLocPredictPath, build_random_localizer,
                                               count_flops, fwd_bwd_factor, human,
                                               load_cam_tower, make_paths, measure_latency,
                                               paper_protocol_latency, parameter_rows)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='TeD-Loc complexity (paper Table 3)')
    p.add_argument('config')
    p.add_argument('--input-size', type=int, default=None,
                   help='square input side (default: model.backbone.img_size, else 224)')
    p.add_argument('--num-runs', type=int, default=None,
                   help='timed runs per path (10; --protocol paper: 1000)')
    p.add_argument('--warmup', type=int, default=None,
                   help='untimed runs per path first (2; --protocol paper: 20)')
    p.add_argument('--protocol', choices=('quick', 'paper'), default='quick',
                   help='quick: interleaved rounds, median reported; paper: the paper\'s '
                   '§4.3 timing (20 warm-up calls, 1000 timed steps, mean, batch 1)')
    p.add_argument('--device', default='cpu')
    p.add_argument('--threads', type=int, default=2, help='torch.set_num_threads (CPU)')
    p.add_argument('--cam-tower', default=None,
                   help='open_clip architecture or JSON model config of the Grad-CAM '
                        'image tower; "none" skips the Grad-CAM row (default: ViT-L-14, '
                        'tedloc_mm.analysis.complexity.DEFAULT_CAM_TOWER)')
    p.add_argument('--no-flops', action='store_true', help='skip the FLOP count')
    p.add_argument('--depth', type=int, default=2, help='module depth of the parameter table')
    p.add_argument('--out', help='also write everything to this JSON file')
    p.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction)
    add_debug_argument(p)
    return p.parse_args(argv)


def input_size_of(cfg, given):
    if given is not None:
        return given
    return int(cfg.model.get('backbone', {}).get('img_size', 224))


def print_table(header, rows):
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    line = '+-' + '-+-'.join('-' * w for w in widths) + '-+'

    def fmt(row):
        return '| ' + ' | '.join(str(c).ljust(w) for c, w in zip(row, widths)) + ' |'

    print(line, fmt(header), line, *[fmt(r) for r in rows], line, sep='\n')


def run(args):
    check_device(args.device)   # a device this machine lacks: one error line
    _heavy_imports()
    if args.cam_tower is None:
        args.cam_tower = DEFAULT_CAM_TOWER
    paper = args.protocol == 'paper'
    if args.warmup is None:
        args.warmup = 20 if paper else 2
    if args.num_runs is None:
        args.num_runs = 1000 if paper else 10
    if args.device == 'cpu' and args.threads:
        torch.set_num_threads(args.threads)
    if not osp.isfile(args.config):
        raise FileNotFoundError(f'config file not found: {args.config}')
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    size = input_size_of(cfg, args.input_size)
    model = build_random_localizer(cfg, args.device)
    report = dict(config=args.config, input_size=size, device=args.device,
                  threads=torch.get_num_threads(), num_runs=args.num_runs,
                  warmup=args.warmup, protocol=args.protocol)

    params = parameter_rows(model, args.depth)
    report['parameters'] = [dict(module=n, total=t, trainable=tr) for n, t, tr in params]
    print(f'\nParameters of {args.config} (random weights; buffers such as the anchors '
          'not counted)')
    print_table(('module', 'total', 'trainable'),
                [(n, f'{t:,}', f'{tr:,}') for n, t, tr in params])

    gradcam, tower_name, tower_flops = None, None, None
    if args.cam_tower.lower() != 'none':
        clip_model, tokenizer, tower_name = load_cam_tower(args.cam_tower, args.device)
        tower_params = sum(p.numel() for p in clip_model.visual.parameters())
        if not args.no_flops:  # before GradCAM hooks the tower
            s = clip_model.visual.image_size
            s = s[0] if isinstance(s, (tuple, list)) else s
            tower_flops, _ = count_flops(clip_model.visual,
                                         torch.randn(1, 3, s, s, device=args.device))
        gradcam = GradCAMPath(clip_model, tokenizer)
        if gradcam.image_size != size:
            print(f'note: the Grad-CAM tower {tower_name} takes {gradcam.image_size} px '
                  f'inputs; it is timed at that size (TeD-Loc at {size} px)')

    paths, inputs = make_paths(model, gradcam, size, args.device)
    flops = {}
    if not args.no_flops:
        # one trace: the backbone's share of the predict path is its own forward
        flops['tedloc'], by_module = count_flops(TeDLocPredictPath(model), inputs['tedloc'])
        report['flops_by_module'] = {n: by_module.get(f'model.{n}', 0)
                                     for n, _ in model.named_children()}
        flops['backbone'] = report['flops_by_module'].get('backbone', 0)
        if tower_flops is not None:
            flops['gradcam_forward'] = tower_flops
            x = torch.randn(1, 3, gradcam.image_size, gradcam.image_size, device=args.device)
            factor = fwd_bwd_factor(lambda: clip_model.visual(x), lambda: gradcam(x))
            flops['gradcam_factor'] = factor
            flops['gradcam'] = int(round(factor * tower_flops))
    report['flops'] = flops

    load = os.getloadavg()[0]
    if paper:
        sync = torch.cuda.synchronize if str(args.device).startswith('cuda') else None
        lat = paper_protocol_latency(paths, args.warmup, args.num_runs, sync)
    else:
        lat = measure_latency(paths, warmup=args.warmup, runs=args.num_runs)
    stat = 'mean_ms' if paper else 'median_ms'
    report['latency'] = lat
    report['load_average'] = [load, os.getloadavg()[0]]

    total = params[-1]
    bb_params = sum(p.numel() for p in model.backbone.parameters())
    rows = [
        ('TeD-Loc predict (class + map)', f'{human(total[1])} ({human(total[2])} trainable)',
         human(flops['tedloc']) if 'tedloc' in flops else '-',
         f'{lat["tedloc"][stat]:.1f} ({lat["tedloc"]["min_ms"]:.1f})'),
        ('Backbone forward (frozen)', human(bb_params),
         human(flops['backbone']) if 'backbone' in flops else '-',
         f'{lat["backbone"][stat]:.1f} ({lat["backbone"]["min_ms"]:.1f})'),
    ]
    if gradcam is not None:
        rows.append((f'CLIP-ES Grad-CAM, {tower_name} image tower (fwd + bwd)',
                     human(tower_params),
                     (f'~{human(flops["gradcam"])} (fwd {human(flops["gradcam_forward"])} '
                      f'x{flops["gradcam_factor"]:.2f} measured)') if 'gradcam' in flops else '-',
                     f'{lat["gradcam"][stat]:.1f} ({lat["gradcam"]["min_ms"]:.1f})'))
        report['gradcam_tower'] = dict(name=tower_name, params=tower_params,
                                       image_size=gradcam.image_size)
    how = "the paper's §4.3 protocol, each path alone" if paper else 'interleaved'
    print(f'\nCost at {size} px, batch 1, {args.device}, {torch.get_num_threads()} '
          f'thread(s); latency = {stat[:-3]} of {args.num_runs} runs after {args.warmup} '
          f'warm-up ({how}); 1-min load average {load:.2f} -> {report["load_average"][1]:.2f} on '
          f'{os.cpu_count()} CPUs')
    print_table(('Method', '#Params', 'FLOPs', f'Latency ms {stat[:-3]} (min)'), rows)
    if 'tedloc' in flops and report.get('flops_by_module'):
        print('TeD-Loc FLOPs by module: ' + ', '.join(
            f'{k} {human(v)}' for k, v in report['flops_by_module'].items()))
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(report, f, indent=2)
        print(f'written to {args.out}')
    return report


def main(argv=None):
    return run(parse_args(argv))


if __name__ == '__main__':
    raise SystemExit(run_tool(main))
