"""draw_localization writes its text in a strip beside the image, never over it."""
import numpy as np
from mmengine.visualization import Visualizer

from tedloc_mm.visualization import draw_localization


def test_text_goes_into_a_strip_beside_the_image():
    vis = Visualizer.get_instance('tedloc_test_overlay_strip')
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (96, 80, 3), dtype=np.uint8)
    m = np.zeros((96, 80), np.float32)
    m[20:60, 10:50] = 1
    kw = dict(pred_boxes=[[10, 20, 50, 60]], gt_boxes=[[5, 15, 55, 70]])
    plain = draw_localization(vis, img, m, **kw)
    texted = draw_localization(vis, img, m, texts=['bird: 0.910', 'thr 0.35'], **kw)
    assert plain.shape == img.shape
    assert texted.shape[0] == 96 and texted.shape[1] > 80
    # the picture part is pixel for pixel the drawing without text
    np.testing.assert_array_equal(texted[:, :80], plain)
    strip = texted[:, 80:].astype(int)
    # a white panel with dark text and the coloured legend (green GT, red prediction)
    assert (strip == 255).all(axis=2).mean() > 0.6
    assert (strip.max(axis=2) < 80).any()
    assert ((strip[..., 1] > 150) & (strip[..., 0] < 80)).any()   # green legend
    assert ((strip[..., 0] > 150) & (strip[..., 1] < 80)).any()   # red legend
