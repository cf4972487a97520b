"""CLIP-ES: the block-by-block ViT forward, the Grad-CAM targets, CAA and multi-scale,
each against an independent computation (tests/clip_reference.py) on a random tiny CLIP."""
import cv2
import numpy as np
import pytest
import torch

import tedloc_mm  # noqa: F401  (compat before open_clip)
from clip_reference import (gradcam, minmax, mha_weights, numpy_caa, open_clip_forward,
                            text_embeddings, tiny_clip)
from tedloc_mm.clip.es_affinity import caa_refine
from tedloc_mm.clip.es_cam import CLIPESGradCAM
from tedloc_mm.clip.vit_forward import CLIPViTForward

NAMES = ['red bird', 'blue bird', 'green frog']
BG = ['sky', 'tree', 'water']


@pytest.fixture(scope='module')
def clip():
    return tiny_clip()


def test_vit_forward_matches_open_clip_and_torch_attention(clip):
    model, _ = clip
    vit = CLIPViTForward(model.visual)
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = vit(x, attn_layers=3)
        z = vit.project(out['tokens'])
        pooled, tokens = open_clip_forward(model, x)
    torch.testing.assert_close(z[:, 0], pooled, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(z[:, 1:], tokens @ model.visual.proj, atol=1e-5, rtol=1e-5)
    for mine, ref in zip(out['attn'], mha_weights(model, x)):
        torch.testing.assert_close(mine, ref, atol=1e-6, rtol=1e-5)
    assert out['grid'] == (4, 4)
    # other input sizes: the positional embedding is resized, the grid follows
    with torch.no_grad():
        x48 = torch.randn(1, 3, 48, 40, generator=torch.Generator().manual_seed(1))
        assert vit(x48)['tokens'].shape == (1, 1 + 6 * 5, 32)
    with pytest.raises(ValueError, match='multiple of the patch'):
        vit(torch.randn(1, 3, 30, 32, generator=torch.Generator().manual_seed(2)))


@pytest.mark.parametrize('softmax_over', ['label', 'all'])
def test_gradcam_target_matches_a_hand_written_gradcam(clip, softmax_over):
    model, tok = clip
    gen = CLIPESGradCAM(model, tok, NAMES, background_words=BG, softmax_over=softmax_over,
                        refine=False)
    text = text_embeddings(model, tok, NAMES + BG, ['a clean origami {}.'])
    torch.testing.assert_close(gen.text_features, text, atol=1e-6, rtol=1e-5)
    torch.manual_seed(1)
    x = torch.randn(3, 3, 32, 32)
    labels = [0, 2, 1]
    grid = gen.grid_cams(x, labels)['gradcam']
    full = gen(x, labels)
    assert full.shape == (3, 32, 32) and full.dtype == np.float32
    for i, y in enumerate(labels):
        ref = gradcam(model, x[i:i + 1], text, y, [3, 4, 5], softmax_over)
        np.testing.assert_allclose(grid[i], ref, atol=2e-5)
        np.testing.assert_allclose(full[i], cv2.resize(ref.astype(np.float32), (32, 32)),
                                   atol=2e-5)
    assert (grid.reshape(3, -1).max(1) > 0.99).all()   # each map has positive evidence
    # the two targets differ: the other classes take part only in 'all'
    other = CLIPESGradCAM(model, tok, NAMES, background_words=BG,
                          softmax_over='all' if softmax_over == 'label' else 'label',
                          refine=False)
    assert np.abs(other.grid_cams(x, labels)['gradcam'] - grid).max() > 1e-3
    with pytest.raises(ValueError, match='label 5'):
        gen(x[:1], [5])


def test_class_token_pool_matches_the_reference(clip):
    model, tok = clip
    gen = CLIPESGradCAM(model, tok, NAMES, background_words=BG, image_pool='cls', refine=False)
    x = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    ref = gradcam(model, x, gen.text_features, 1, [3, 4, 5], pool='cls')
    np.testing.assert_allclose(gen.grid_cams(x, [1])['gradcam'][0], ref, atol=2e-5)


def test_caa_matches_numpy_on_a_small_attention_tensor():
    rng = np.random.default_rng(0)
    attn = rng.random((2, 16, 16)) + 0.05            # positive, like softmax weights
    cams = np.zeros((2, 4, 4))
    cams[0, 1:3, 0:2] = [[1.0, 0.6], [0.5, 0.3]]      # one blob
    cams[0, 0, 2] = 0.2                               # below 0.4: outside every box
    cams[1] = rng.random((4, 4))                      # many small contours
    mine = caa_refine(cams, torch.from_numpy(attn))
    for i in range(2):
        np.testing.assert_allclose(mine[i], numpy_caa(cams[i], attn[i]), rtol=1e-5, atol=1e-7)
    # the box mask matters: the 0.2 pixel counts only when the threshold takes it in
    assert np.abs(mine[0] - numpy_caa(cams[0], attn[0], threshold=0.0)).max() > 1e-4


def test_refined_cam_is_caa_of_the_gradcam_and_the_last_layers_attention(clip):
    model, tok = clip
    gen = CLIPESGradCAM(model, tok, NAMES, background_words=BG, attn_layers=2)
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(4))
    cams = gen.grid_cams(x, [1, 0])
    full = gen(x, [1, 0])
    weights = mha_weights(model, x)
    attn = torch.stack(weights[-2:]).mean(0)[:, 1:, 1:].numpy()  # last 2 layers, patches
    for i, y in enumerate([1, 0]):
        ref_cam = gradcam(model, x[i:i + 1], gen.text_features, y, [3, 4, 5])
        ref = minmax(numpy_caa(ref_cam, attn[i]))
        np.testing.assert_allclose(cams['refined'][i], ref, atol=1e-4)
        np.testing.assert_allclose(full[i], cv2.resize(ref.astype(np.float32), (32, 32)),
                                   atol=1e-4)


def test_multi_scale_and_flip_average_the_single_views(clip):
    model, tok = clip
    x = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(5))
    gen = CLIPESGradCAM(model, tok, NAMES, background_words=BG, scales=(1.0, 1.5), flip=True)
    single = CLIPESGradCAM(model, tok, NAMES, background_words=BG)
    views = []
    for side in (32, 48):   # ceil(1.5 * 32 / 8) * 8 = 48
        xs = torch.nn.functional.interpolate(x, size=(side, side), mode='bicubic',
                                             align_corners=False)
        for flipped in (False, True):
            # each view's refined grid map, resized straight to the 32 px input
            m = single.grid_cams(xs.flip(-1) if flipped else xs, [2])['refined'][0]
            m = cv2.resize(m, (32, 32))
            views.append(m[:, ::-1] if flipped else m)
    np.testing.assert_allclose(gen(x, [2])[0], minmax(np.mean(views, axis=0)), atol=1e-5)


def test_bad_options_are_errors(clip):
    model, tok = clip
    with pytest.raises(ValueError, match='softmax_over'):
        CLIPESGradCAM(model, tok, NAMES, softmax_over='some')
    with pytest.raises(ValueError, match='image_pool'):
        CLIPESGradCAM(model, tok, NAMES, image_pool='max')
    with pytest.raises(ValueError, match='scales'):
        CLIPESGradCAM(model, tok, NAMES, scales=(0.0, ))
