"""Per-sample cost of the pseudo-label path at 224 px, against decoding the image.

Measures, per sample (median over repeats, one process, one thread for OpenCV):
  * decode: ``cv2.imdecode`` of a JPEG (500 x 375, CUB's typical size; and 224 x 224);
  * CAM read: ``CAMStore`` random access to one CAM of a store of N CAMs;
  * LoadCAM: CAM read + bilinear resize onto a 500 x 375 image;
  * sampler: ``PseudoLabelSampler`` on a 224 x 224 CAM (area resize to 56 x 56, Otsu,
    top / bottom candidates, balanced draw);
and the store's bytes per image (data + id line) and index bytes per image.

    python benchmarks/sampler_speed.py [--num-cams 20000] [--resolution 64]
"""
import argparse
import os
import os.path as osp
import tempfile
import time

import cv2
import numpy as np

import tedloc_mm  # noqa: F401
from tedloc_mm.datasets import LoadCAM, PseudoLabelSampler
from tedloc_mm.fileio.cam_store import CAMStore, CAMStoreWriter


def per_call(fn, n, repeats=5):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for i in range(n):
            fn(i)
        times.append((time.perf_counter() - t0) / n)
    return float(np.median(times))


def smooth_cam(rng, size):
    return cv2.resize(rng.random((7, 7)).astype(np.float32), (size, size),
                      interpolation=cv2.INTER_CUBIC)


def natural_like_image(rng, w, h):
    img = cv2.resize(rng.integers(0, 255, (h // 8, w // 8, 3), dtype=np.uint8), (w, h),
                     interpolation=cv2.INTER_CUBIC)
    return np.clip(img + rng.normal(0, 12, img.shape), 0, 255).astype(np.uint8)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--num-cams', type=int, default=20000)
    parser.add_argument('--resolution', type=int, default=64)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    rng = np.random.default_rng(0)

    jpg500 = cv2.imencode('.jpg', natural_like_image(rng, 500, 375),
                          [cv2.IMWRITE_JPEG_QUALITY, 90])[1]
    jpg224 = cv2.imencode('.jpg', natural_like_image(rng, 224, 224),
                          [cv2.IMWRITE_JPEG_QUALITY, 90])[1]
    t_dec500 = per_call(lambda i: cv2.imdecode(jpg500, cv2.IMREAD_COLOR), 200)
    t_dec224 = per_call(lambda i: cv2.imdecode(jpg224, cv2.IMREAD_COLOR), 200)

    sampler = PseudoLabelSampler(grid_stride=4, num_fg_candidates=0.5,
                                 num_bg_candidates=0.5, num_samples=16)
    cams224 = [smooth_cam(rng, 224) for _ in range(50)]
    img224 = np.zeros((224, 224, 3), np.uint8)
    t_sampler = per_call(lambda i: sampler(dict(img=img224, cam=cams224[i % 50])), 500)

    with tempfile.TemporaryDirectory() as root:
        small = [smooth_cam(rng, args.resolution) for _ in range(100)]
        ids = [f'n{i % 1000:08d}/n{i % 1000:08d}_{i}.JPEG' for i in range(args.num_cams)]
        with CAMStoreWriter(root, 'part-0', args.resolution) as w:
            for i, img_id in enumerate(ids):
                w.write(img_id, small[i % 100])
        disk = sum(osp.getsize(osp.join(root, f)) for f in os.listdir(root))
        store = CAMStore(root)
        index_bytes = store._keys.nbytes + store._shard_idx.nbytes + store._rows.nbytes
        order = rng.permutation(len(ids))
        t_read = per_call(lambda i: store[ids[order[i % len(ids)]]], 5000)
        load = LoadCAM(root)
        img500 = np.zeros((375, 500, 3), np.uint8)
        t_load = per_call(lambda i: load(dict(img=img500, img_id=ids[order[i % len(ids)]])),
                          2000)

    n = args.num_cams
    print(f'CAM store: {disk / n:.0f} bytes/image on disk ({args.resolution}x'
          f'{args.resolution} uint8 + id line), index {index_bytes / n:.0f} bytes/image '
          f'in memory; 1.28 M ILSVRC images -> {disk / n * 1.281167e6 / 1e9:.2f} GB')
    print(f'decode JPEG 500x375          : {t_dec500 * 1e3:7.3f} ms/sample')
    print(f'decode JPEG 224x224          : {t_dec224 * 1e3:7.3f} ms/sample')
    print(f'CAM store read (random, N={n}): {t_read * 1e3:7.3f} ms/sample (page cache warm)')
    print(f'LoadCAM (read + resize 500x375): {t_load * 1e3:7.3f} ms/sample')
    print(f'PseudoLabelSampler 224 -> 56x56: {t_sampler * 1e3:7.3f} ms/sample')
    print(f'ratio sampler / decode(500x375): {t_sampler / t_dec500:.2f}; '
          f'(LoadCAM + sampler) / decode(500x375): {(t_load + t_sampler) / t_dec500:.2f}')


if __name__ == '__main__':
    main()
