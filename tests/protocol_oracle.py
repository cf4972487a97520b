"""A straightforward reference of the WSOL box protocol (one OpenCV threshold +
findContours per CAM threshold) and random test maps, shared by the evaluation tests."""
import cv2
import numpy as np

from tedloc_mm.evaluation import cam_thresholds, normalize_map

THR = cam_thresholds(0.01)


IOUS = (0.3, 0.5, 0.7)


def oracle_iou(box_a, box_b):
    """IoU of two x0y0x1y1 boxes, +1 pixel convention, plain Python."""
    iw = min(box_a[2], box_b[2]) - max(box_a[0], box_b[0]) + 1
    ih = min(box_a[3], box_b[3]) - max(box_a[1], box_b[1]) + 1
    inter = max(0, iw) * max(0, ih)
    area = lambda b: (b[2] - b[0] + 1) * (b[3] - b[1] + 1)  # noqa: E731
    union = area(box_a) + area(box_b) - inter
    return inter / union if union > 0 else 0.0


def oracle_ious(map01, gt_boxes):
    """One cv2.threshold + findContours per CAM threshold (the reference loop)."""
    h, w = map01.shape
    map8 = np.expand_dims((map01 * 255).astype(np.uint8), 2)
    largest, every = [], []
    for thr in THR:
        _, mask = cv2.threshold(map8, int(thr * np.max(map8)), 255, cv2.THRESH_BINARY)
        contours = cv2.findContours(mask, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)[0]
        boxes = []
        for c in contours:
            x, y, bw, bh = cv2.boundingRect(c)
            boxes.append((x, y, min(x + bw, w - 1), min(y + bh, h - 1)))
        if not boxes:
            boxes, big = [(0, 0, 0, 0)], 0
        else:
            big = max(range(len(contours)), key=lambda i: cv2.contourArea(contours[i]))
        largest.append(max(oracle_iou(boxes[big], g) for g in gt_boxes))
        every.append(max(oracle_iou(b, g) for b in boxes for g in gt_boxes))
    return np.array(largest), np.array(every)


def _upsample(grid, size):
    return normalize_map(cv2.resize(grid, (size, size), interpolation=cv2.INTER_CUBIC))[0]


def random_case(rng, kind, size):
    if kind == 'blob':
        g = 14
        yy, xx = np.mgrid[0:g, 0:g]
        grid = 0.05 * rng.random((g, g))
        for _ in range(rng.integers(1, 4)):
            cy, cx = rng.uniform(0, g, 2)
            s = rng.uniform(1.0, 4.0)
            grid += rng.uniform(0.3, 1) * np.exp(-((yy - cy)**2 + (xx - cx)**2) / (2 * s * s))
        m = _upsample(grid, size)
    elif kind == 'random':
        m = _upsample(rng.random((rng.integers(3, 15),) * 2), size)
    elif kind == 'noisy':
        m = _upsample(rng.random((size // 3, size // 3)), size)
    elif kind == 'levels':      # few distinct values: many thresholds share a mask
        m = np.round(_upsample(rng.random((6, 6)), size) * rng.integers(2, 6)) / 5
        m = normalize_map(m)[0]
    else:                       # rings: nested contours / holes at many levels
        yy, xx = np.mgrid[0:size, 0:size]
        cy, cx = rng.uniform(0.2, 0.8, 2) * size
        r = np.hypot(yy - cy, xx - cx)
        m = normalize_map(np.cos(r / rng.uniform(3, 10)) * np.exp(-r / size)
                          + 0.1 * _upsample(rng.random((5, 5)), size))[0]
    boxes = []
    for _ in range(rng.integers(1, 4)):
        x0, y0 = rng.integers(0, size - 2, 2)
        boxes.append([x0, y0, rng.integers(x0, size + 1), rng.integers(y0, size + 1)])
    return m, np.array(boxes)
