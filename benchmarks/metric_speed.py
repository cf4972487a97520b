"""Speed of WSOLMetric's box evaluation against the plain protocol implementation.

Both evaluate the same maps (224 px, 100 CAM thresholds by default, IoU
0.3/0.5/0.7, largest contour and all contours). The plain one binarises and runs
``cv2.findContours`` once per threshold (one trace serves both box variants);
WSOLMetric's (:func:`tedloc_mm.evaluation.localization_ious`) reads the boxes
of every distinct mask from one compiled sweep over the pixels sorted by value
(the first call compiles it; the timing warms it up first). Prints images/s both
ways (the
best of ``--repeat`` timed passes, since the machine may be shared), the ratio
and whether every hit (image x variant x IoU x CAM threshold) is identical.
``--workers 1 2`` also times WSOLMetric's evaluator over that many threads
(:func:`tedloc_mm.evaluation.map_in_threads`, as ``evaluate_maps(workers=...)``)
and prints the speed-up over one worker, again checking identical hits.
``--tool 1000`` times ``tools/analysis_tools/eval_scoremaps.py``'s evaluation
(loading the ``.npy`` files included, interpreter start-up excluded) on that many
saved CAM-like maps in the CUB layout, at each ``--tool-intervals`` step and each
``--workers`` count, and checks that the results do not depend on the workers.

    python benchmarks/metric_speed.py [--num 300] [--interval 0.01] [--repeat 3]
        [--families blob random noisy] [--workers 1 2] [--tool 1000]
        [--tool-intervals 0.01 0.001]

Map families: ``blob`` CAM-like maps (1-3 Gaussian blobs + weak noise on a 14x14
grid, bicubic to 224 px), ``random`` (uniform 14x14 noise, bicubic: many blobs
at every level), ``noisy`` (uniform 56x56 noise: hundreds of small contours).
"""
import argparse
import os
import os.path as osp
import tempfile
import time

import cv2
import numpy as np

import tedloc_mm  # noqa: F401
from tedloc_mm.evaluation import (box_iou, cam_thresholds, localization_ious, map_in_threads,
                                  normalize_map)
from tedloc_mm.evaluation.box_protocol import EMPTY_BOX, contour_box, quantize_map

SIZE = 224
IOU_THRS = np.array([0.3, 0.5, 0.7])


def make_map(rng, family):
    if family == 'blob':
        yy, xx = np.mgrid[0:14, 0:14]
        grid = 0.05 * rng.random((14, 14))
        for _ in range(rng.integers(1, 4)):
            cy, cx = rng.uniform(1, 13, 2)
            s = rng.uniform(1.2, 4.0)
            grid += rng.uniform(0.4, 1.0) * np.exp(-((yy - cy)**2 + (xx - cx)**2) / (2 * s * s))
    elif family == 'random':
        grid = rng.random((14, 14))
    elif family == 'noisy':
        grid = rng.random((56, 56))
    else:
        raise ValueError(family)
    return normalize_map(cv2.resize(grid, (SIZE, SIZE), interpolation=cv2.INTER_CUBIC))[0]


def make_boxes(rng):
    boxes = []
    for _ in range(rng.integers(1, 3)):
        x0, y0 = rng.integers(0, SIZE - 40, 2)
        x1 = rng.integers(x0 + 20, SIZE)
        y1 = rng.integers(y0 + 20, SIZE)
        boxes.append([x0, y0, x1, y1])
    return np.array(boxes)


def plain_hits(map01, gt_boxes, thresholds):
    """One threshold + findContours per CAM threshold -> bool (2, I, T)."""
    height, width = map01.shape
    map8 = quantize_map(map01)
    best = np.zeros((2, len(thresholds)))
    for t, thr in enumerate(thresholds):
        _, mask = cv2.threshold(map8, int(thr * np.max(map8)), 255, cv2.THRESH_BINARY)
        contours = cv2.findContours(mask, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)[0]
        if len(contours) == 0:
            largest = all_boxes = np.array([EMPTY_BOX])
        else:
            all_boxes = np.array([contour_box(c, height, width) for c in contours])
            largest = np.array([contour_box(max(contours, key=cv2.contourArea),
                                            height, width)])
        best[0, t] = box_iou(largest, gt_boxes).max()
        best[1, t] = box_iou(all_boxes, gt_boxes).max()
    return best[:, None, :] >= IOU_THRS[None, :, None]


def fast_hits(map01, gt_boxes, thresholds):
    iou = np.stack(localization_ious(map01, gt_boxes, thresholds))
    return iou[:, None, :] >= IOU_THRS[None, :, None]


def run(family, num, interval, seed, repeat=1, workers=()):
    rng = np.random.default_rng(seed)
    maps = [make_map(rng, family) for _ in range(num)]
    boxes = [make_boxes(rng) for _ in range(num)]
    thresholds = cam_thresholds(interval)
    fast_hits(maps[0], boxes[0], thresholds)     # numba: compile (or load) outside the timing

    def threaded(n_workers):
        def fn(m, b, thr):
            return map_in_threads(lambda i: fast_hits(m[i], b[i], thr), len(m), n_workers)
        return fn

    impls = [('plain', lambda m, b, thr: [plain_hits(*a, thr) for a in zip(m, b)]),
             ('fast', lambda m, b, thr: [fast_hits(*a, thr) for a in zip(m, b)])]
    impls += [(f'w{w}', threaded(w)) for w in workers]
    timings, hits = {}, {}
    for _ in range(repeat):
        for name, fn in impls:   # interleaved rounds: load changes hit all alike
            start = time.perf_counter()
            hits[name] = np.stack(fn(maps, boxes, thresholds))
            rate = num / (time.perf_counter() - start)
            timings[name] = max(timings.get(name, 0.0), rate)
    # every image's hit at every (variant, IoU, CAM threshold), hence every count
    identical = all(np.array_equal(hits['plain'], h) for h in hits.values())
    ratio = timings['fast'] / timings['plain']
    print(f'{family:7s} {num:5d} maps  plain {timings["plain"]:8.1f} img/s  '
          f'WSOLMetric {timings["fast"]:8.1f} img/s  ratio {ratio:6.1f}x  '
          f'identical counts: {"yes" if identical else "NO"}')
    if workers:
        base = timings[f'w{workers[0]}']
        print('        threads: ' + '  '.join(
            f'{w}: {timings[f"w{w}"]:7.1f} img/s ({timings[f"w{w}"] / base:4.2f}x)'
            for w in workers))
    return identical


def run_tool(num, intervals, workers, seed, repeat=1):
    """Time eval_scoremaps' evaluation on ``num`` saved maps (CUB layout)."""
    from tedloc_mm.evaluation.scoremap_dir import evaluate_scoremap_dir
    rng = np.random.default_rng(seed)
    ok = True
    with tempfile.TemporaryDirectory() as root:
        split = osp.join(root, 'meta', 'CUB', 'test')
        os.makedirs(split)
        lines = {k: [] for k in ('image_ids', 'class_labels', 'image_sizes', 'localization')}
        for i in range(num):
            img_id = f'{i % 200:03d}.class/img_{i:05d}.jpg'
            path = osp.join(root, 'maps', img_id + '.npy')
            os.makedirs(osp.dirname(path), exist_ok=True)
            np.save(path, make_map(rng, 'blob'))
            lines['image_ids'].append(img_id)
            lines['class_labels'].append(f'{img_id},{i % 200}')
            lines['image_sizes'].append(f'{img_id},{SIZE},{SIZE}')
            lines['localization'] += [f'{img_id},' + ','.join(map(str, b))
                                      for b in make_boxes(rng)]
        for name, rows in lines.items():
            with open(osp.join(split, name + '.txt'), 'w') as f:
                f.write('\n'.join(rows) + '\n')
        for interval in intervals:
            rates, results = {}, {}
            for _ in range(repeat):
                for w in workers:
                    start = time.perf_counter()
                    results[w] = evaluate_scoremap_dir(
                        osp.join(root, 'maps'), osp.join(root, 'meta'), root, 'CUB', 'test',
                        cam_curve_interval=interval, workers=w)
                    rates[w] = max(rates.get(w, 0.0), num / (time.perf_counter() - start))
            same = all(r == results[workers[0]] for r in results.values())
            ok &= same
            print(f'eval_scoremaps {num} maps, step {interval:g}: ' + '  '.join(
                f'{w} worker(s) {rates[w]:7.1f} img/s = {num / rates[w]:6.2f} s '
                f'({rates[w] / rates[workers[0]]:4.2f}x)' for w in workers)
                + f'  identical results: {"yes" if same else "NO"}')
    return ok


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--num', type=int, default=300, help='maps per family')
    parser.add_argument('--interval', type=float, default=0.01, help='CAM threshold step')
    parser.add_argument('--families', nargs='+', default=['blob', 'random', 'noisy'])
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--repeat', type=int, default=3,
                        help='timed passes per implementation; the best one is reported')
    parser.add_argument('--workers', type=int, nargs='*', default=[],
                        help='also time the evaluator over these numbers of threads')
    parser.add_argument('--tool', type=int, default=0,
                        help='also time eval_scoremaps on this many saved maps')
    parser.add_argument('--tool-intervals', type=float, nargs='+', default=[0.01, 0.001])
    args = parser.parse_args()
    cv2.setNumThreads(1)
    print(f'{SIZE} px, {len(cam_thresholds(args.interval))} CAM thresholds, IoU {IOU_THRS}, '
          f'best of {args.repeat}, {os.cpu_count()} CPUs, load average '
          f'{os.getloadavg()[0]:.1f}')
    ok = [run(f, args.num, args.interval, args.seed, args.repeat, args.workers)
          for f in args.families]
    if args.tool:
        ok.append(run_tool(args.tool, args.tool_intervals, args.workers or [1], args.seed,
                           args.repeat))
    raise SystemExit(0 if all(ok) else 1)


if __name__ == '__main__':
    main()
