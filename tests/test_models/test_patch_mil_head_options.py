"""PatchMILHead options users can set: a 2-layer g (``g_hidden_channels``), SVD anchors
(``orthogonalization='svd'``, against NumPy's SVD), and every constructor / input error."""
import math

import numpy as np
import pytest
import torch
from mmpretrain.structures import DataSample

from tedloc_mm.models.heads import PatchMILHead
from tedloc_mm.fileio import save_anchor_file


def _sample(label, plm, img_id='img0'):
    plm = torch.as_tensor(plm)
    ds = DataSample(metainfo=dict(img_shape=tuple(plm.shape), img_id=img_id))
    ds.set_gt_label(label)
    ds.pseudo_label_map = plm
    return ds


# ---------------------------------------------------------------- g_hidden_channels
def test_two_layer_g_is_conv_gelu_conv_by_hand():
    """g(z) = sigmoid(w2 . GELU(W1 z + b1) + b2) per pixel, GELU the exact one
    x * Phi(x) = x / 2 * (1 + erf(x / sqrt 2)), computed here from its formula."""
    head = PatchMILHead(num_classes=2, in_channels=3, anchor_embeddings=torch.eye(2, 3),
                        orthogonalization='none', g_hidden_channels=2)
    w1 = [[1.0, -2.0, 0.5], [0.0, 1.0, 1.0]]
    b1 = [0.25, -1.0]
    w2, b2 = [2.0, -3.0], 0.5
    with torch.no_grad():
        head.fg_classifier[0].weight.copy_(torch.tensor(w1).view(2, 3, 1, 1))
        head.fg_classifier[0].bias.copy_(torch.tensor(b1))
        head.fg_classifier[2].weight.copy_(torch.tensor(w2).view(1, 2, 1, 1))
        head.fg_classifier[2].bias.fill_(b2)
    pixels = [[1.0, 0.0, 2.0], [-1.0, 0.5, 0.0], [0.3, -0.7, 1.2]]
    z = torch.tensor(pixels).T.reshape(1, 3, 1, 3)

    def gelu(x):
        return 0.5 * x * (1 + math.erf(x / math.sqrt(2)))

    want = []
    for p in pixels:
        hidden = [gelu(sum(w * v for w, v in zip(row, p)) + b) for row, b in zip(w1, b1)]
        want.append(sum(w * h for w, h in zip(w2, hidden)) + b2)
    torch.testing.assert_close(head.fg_logits(z)[0, 0], torch.tensor(want))
    out = head.predict(z, [_sample(0, [[-1, -1, -1]])])[0]
    torch.testing.assert_close(out.pred_map[0], torch.sigmoid(torch.tensor(want)))


def test_two_layer_g_trains_both_layers():
    torch.manual_seed(0)   # the constructor draws the conv weights from the global RNG
    head = PatchMILHead(num_classes=2, in_channels=4, anchor_embeddings=torch.eye(2, 4),
                        g_hidden_channels=5)
    assert [n for n, _ in head.named_parameters()] == [
        'fg_classifier.0.weight', 'fg_classifier.0.bias', 'fg_classifier.2.weight',
        'fg_classifier.2.bias']
    assert head.fg_classifier[0].weight.shape == (5, 4, 1, 1)
    g = torch.Generator().manual_seed(1)
    z = torch.randn(2, 4, 2, 3, generator=g)
    losses = head.loss(z, [_sample(0, [[1, 0, -1], [1, 0, -1]]),
                           _sample(1, [[0, 1, 1], [-1, -1, 0]])])
    sum(losses.values()).backward()
    for name, p in head.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


# ---------------------------------------------------------------- svd anchors
def _polar(e):
    """NumPy's polar factor U V^T of E = U S V^T (thin SVD), float64."""
    u, _, vt = np.linalg.svd(np.asarray(e, np.float64), full_matrices=False)
    return u @ vt


@pytest.mark.parametrize('k,d', [(3, 5), (5, 3)])
def test_svd_anchors_are_numpys_polar_factor(k, d):
    g = torch.Generator().manual_seed(k * 10 + d)
    e = torch.randn(k, d, generator=g)
    head = PatchMILHead(num_classes=k, in_channels=d, anchor_embeddings=e,
                        orthogonalization='svd', logit_scale=3.0)
    want = _polar(e.numpy())
    np.testing.assert_allclose(head.anchors.numpy(), want, atol=1e-6, rtol=0)
    if k <= d:      # orthonormal rows
        np.testing.assert_allclose(want @ want.T, np.eye(k), atol=1e-12)
    else:           # the tightest frame: orthonormal columns
        np.testing.assert_allclose(want.T @ want, np.eye(d), atol=1e-12)
    # and f(v, t_k) = s <v, t_k> uses these anchors
    v = torch.randn(4, d, generator=g)
    np.testing.assert_allclose(head.class_logits(v).numpy(), 3.0 * v.numpy() @ want.T,
                               atol=1e-5, rtol=0)


def test_svd_anchors_from_an_anchor_file(tmp_path):
    g = torch.Generator().manual_seed(7)
    e = torch.randn(3, 6, generator=g)
    path = str(tmp_path / 'anchors.pth')
    save_anchor_file(path, e, ['a', 'b', 'c'], 'tiny', 'random-init', ['{}'])
    head = PatchMILHead(num_classes=3, in_channels=6, anchor_file=path,
                        orthogonalization='svd')
    np.testing.assert_allclose(head.anchors.numpy(), _polar(e.numpy()), atol=1e-6, rtol=0)


# ---------------------------------------------------------------- error branches
E = torch.eye(2, 3)


@pytest.mark.parametrize('kwargs,error,match', [
    (dict(), ValueError, 'exactly one of anchor_file / anchor_embeddings'),
    (dict(anchor_embeddings=E, anchor_file='x.pth'), ValueError, 'exactly one'),
    (dict(anchor_embeddings=torch.eye(3)), ValueError, r'\(K=2, d\), got \(3, 3\)'),
    (dict(anchor_embeddings=torch.ones(2, 3, 1)), ValueError, r'got \(2, 3, 1\)'),
    (dict(anchor_embeddings=E, map_type='cam'), ValueError, "map_type must be one of.*'cam'"),
    (dict(anchor_embeddings=E, anchor_map_label='top1'), ValueError,
     "anchor_map_label must be 'pred' or 'gt', got 'top1'"),
    (dict(anchor_embeddings=E, orthogonalization='gram'), ValueError,
     "orthogonalization must be one of .*'gram'"),
])
def test_constructor_errors_say_what_is_wrong(kwargs, error, match):
    with pytest.raises(error, match=match):
        PatchMILHead(num_classes=2, in_channels=3, **kwargs)


def test_anchor_file_with_another_class_count_is_refused(tmp_path):
    path = str(tmp_path / 'four.pth')
    save_anchor_file(path, torch.eye(4, 3), ['a', 'b', 'c', 'd'], 'tiny', 'x', ['{}'])
    with pytest.raises(ValueError, match=r'four.pth.*K=4 classes.*num_classes=2'):
        PatchMILHead(num_classes=2, in_channels=3, anchor_file=path)


def test_training_sample_without_pseudo_labels_names_the_image():
    head = PatchMILHead(num_classes=2, in_channels=3, anchor_embeddings=E,
                        orthogonalization='none')
    ds = DataSample(metainfo=dict(img_shape=(1, 2), img_id='birds/0042.jpg')).set_gt_label(0)
    with pytest.raises(KeyError, match=r"'birds/0042.jpg' has no pseudo_label_map.*"
                                       'PseudoLabelSampler'):
        head.loss(torch.zeros(1, 3, 1, 2), [ds])
