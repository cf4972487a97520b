"""Independent computations of what inference returns (the model run by hand, the map
resized and the box traced with OpenCV), shared by the inference tests."""
import cv2
import numpy as np
import torch
from mmpretrain.structures import DataSample

def rand_image(h, w, seed):
    rng = np.random.default_rng(seed)
    img = cv2.resize(rng.integers(0, 256, (8, 8, 3)).astype(np.uint8), (w, h),
                     interpolation=cv2.INTER_CUBIC)
    return img


def reference_prediction(model, img_bgr):
    """Independent path: cv2 bilinear resize to 64 px, the model's preprocessor, predict."""
    x = cv2.resize(img_bgr, (64, 64), interpolation=cv2.INTER_LINEAR)
    x = torch.from_numpy(x).permute(2, 0, 1).contiguous()
    data = model.data_preprocessor(dict(inputs=[x], data_samples=[DataSample()]), False)
    with torch.no_grad():
        out = model(data['inputs'], mode='predict')[0]
    return out.pred_score, out.pred_map


def independent_map(raw_map, ori_hw):
    """The displayed map written out: bicubic cv2 resize of the raw input-size map to
    the original (h, w), then min-max to [0, 1]."""
    m = cv2.resize(raw_map.double().numpy(), (ori_hw[1], ori_hw[0]),
                   interpolation=cv2.INTER_CUBIC)
    return (m - m.min()) / (m.max() - m.min())


def independent_box_edges(raw_map, thr, ori_hw):
    """The box written out with cv2: min-max, 8-bit truncation, pixels > thr * max,
    the largest contour's bounding rectangle read as inclusive pixels (clipped at the
    border), then its edges scaled to the original size by hand."""
    m = raw_map.double().numpy()
    m8 = ((m - m.min()) / (m.max() - m.min()) * 255).astype(np.uint8)
    mask = np.where(m8 > int(thr * m8.max()), 255, 0).astype(np.uint8)
    contours = cv2.findContours(mask, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)[0]
    x, y, bw, bh = cv2.boundingRect(max(contours, key=cv2.contourArea))
    in_h, in_w = m.shape
    x1, y1 = min(x + bw, in_w - 1), min(y + bh, in_h - 1)
    h, w = ori_hw
    return [x * w / in_w, y * h / in_h, (x1 + 1) * w / in_w, (y1 + 1) * h / in_h]
