"""Drawing primitives of the synthetic WSOL benchmark (:mod:`.gliders`).

Polygons are float arrays (N, 2) of x, y pixel coordinates; masks are uint8 (H, W)
in {0, 1}, drawn without anti-aliasing so that they match the painted pixels exactly.
Colours are float32 RGB (3,) in [0, 255].
"""
from typing import List, Sequence, Tuple

import cv2
import numpy as np


def fill_polygons(shape_hw: Tuple[int, int], polygons: Sequence[np.ndarray]) -> np.ndarray:
    """Binary uint8 mask of the union of polygons (N, 2) in x, y pixels, no AA."""
    mask = np.zeros(shape_hw, np.uint8)
    # one call per polygon: a single fillPoly call with several polygons applies the
    # even-odd rule, which would punch holes where they overlap
    for p in polygons:
        cv2.fillPoly(mask, [np.round(p).astype(np.int32)], 1, lineType=cv2.LINE_8)
    return mask


def random_colour(rng, sat: Tuple[float, float], val: Tuple[float, float]) -> np.ndarray:
    """A colour of random hue with saturation and value drawn from the given ranges
    (fractions in [0, 1])."""
    hsv = np.array([[[rng.uniform(0, 180), rng.uniform(*sat) * 255,
                      rng.uniform(*val) * 255]]], np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0].astype(np.float32)


def random_texture(rng, colour: np.ndarray, size: int) -> np.ndarray:
    """(size, size, 3) float RGB texture around ``colour``: stripes, spots or mottle."""
    kind = rng.integers(3)
    if kind == 0:    # two-tone stripes, random period and angle
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
        theta, period = rng.uniform(0, np.pi), rng.uniform(4, 9)
        phase = (xx * np.cos(theta) + yy * np.sin(theta)) / period
        dark = (np.sin(2 * np.pi * phase) > 0)[..., None]
        tex = np.where(dark, colour * rng.uniform(0.55, 0.8), colour)
    elif kind == 1:  # darker spots
        gain = np.ones((size, size), np.float32)
        for _ in range(int(rng.integers(size // 6, size // 3))):
            c = rng.integers(0, size, 2)
            cv2.circle(gain, (int(c[0]), int(c[1])), int(rng.integers(1, 3)),
                       float(rng.uniform(0.5, 0.8)), -1, lineType=cv2.LINE_8)
        tex = colour * gain[..., None]
    else:            # low-frequency mottle
        field = cv2.resize(rng.uniform(0.7, 1.2, (6, 6)).astype(np.float32),
                           (size, size), interpolation=cv2.INTER_CUBIC)
        tex = colour * field[..., None]
    return tex.astype(np.float32)


def body_polygons(rng, centre, length, angle, aspect=(1.4, 2.6), tail_prob=0.5,
                  wings_prob=0.5):
    """Polygons (x, y px) of a body centred at ``centre`` with long axis ``angle``.

    Returns (polygons, head centre (2,), unit vector u (2,) of the long axis).
    """
    a = length / 2
    b = a / rng.uniform(*aspect)
    u = np.array([np.cos(angle), np.sin(angle)])
    v = np.array([-u[1], u[0]])
    t = np.linspace(0, 2 * np.pi, 48, endpoint=False)
    radial = np.ones_like(t)
    for k in (2, 3, 4):   # smooth random bumps, same family for every class
        radial += rng.uniform(-0.07, 0.07) * np.cos(k * t + rng.uniform(0, 2 * np.pi))
    pts = [centre + np.outer(a * radial * np.cos(t), u) + np.outer(b * radial * np.sin(t), v)]
    if rng.random() < tail_prob:   # tail at the back end
        back = centre - 0.8 * a * u
        pts.append(np.stack([back + 0.6 * b * v, back - 0.6 * b * v,
                             back - rng.uniform(0.4, 0.8) * a * u
                             + rng.uniform(-0.5, 0.5) * b * v]))
    if rng.random() < wings_prob:  # a pair of swept wings
        span, sweep = rng.uniform(1.6, 2.6) * b, rng.uniform(0.1, 0.5) * a
        root = centre + rng.uniform(-0.3, 0.2) * a * u
        for side in (1, -1):
            pts.append(np.stack([root + 0.35 * a * u, root - 0.35 * a * u,
                                 root - sweep * u + side * span * v]))
    return pts, centre + 0.9 * a * u, u


def head_polygons(shape: str, centre, u, diameter) -> List[np.ndarray]:
    """The head (class part) as polygons, oriented along the body axis ``u``."""
    v = np.array([-u[1], u[0]])
    r = diameter / 2

    def at(us, vs):
        return centre + np.outer(us, u) + np.outer(vs, v)

    if shape in ('disc', 'ring'):
        t = np.linspace(0, 2 * np.pi, 24, endpoint=False)
        return [at(r * np.cos(t), r * np.sin(t))]
    if shape == 'triangle':
        return [at(np.array([1.3, -0.7, -0.7]) * r, np.array([0, 1, -1]) * r)]
    if shape == 'square':
        return [at(np.array([1, -1, -1, 1]) * 0.85 * r, np.array([1, 1, -1, -1]) * 0.85 * r)]
    if shape == 'plus':
        w = 0.38 * r
        return [at(np.array([r, -r, -r, r]), np.array([w, w, -w, -w])),
                at(np.array([w, w, -w, -w]), np.array([r, -r, -r, r]))]
    if shape == 'star':
        t = np.linspace(0, 2 * np.pi, 10, endpoint=False)
        rad = np.where(np.arange(10) % 2 == 0, 1.25 * r, 0.5 * r)
        return [at(rad * np.cos(t), rad * np.sin(t))]
    raise ValueError(f'unknown head shape {shape!r}')


def place_inside(rng, polygons: Sequence[np.ndarray], size: int, margin: int = 1):
    """A random shift that puts polygons built around (0, 0) inside the image, or None."""
    allp = np.concatenate(list(polygons))
    lo, hi = allp.min(0), allp.max(0)
    if np.any(hi - lo > size - 1 - 2 * margin):
        return None
    return rng.uniform(margin - lo, size - 1 - margin - hi)
