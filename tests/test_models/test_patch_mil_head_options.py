"""PatchMILHead options users can set: a 2-layer g (``g_hidden_channels``), SVD anchors
(``orthogonalization='svd'``, against NumPy's SVD), the anchor map's scoring
(``anchor_map_norm``) and the BG term of L_KD (``kd_bg``) by hand, and every
constructor / input error."""
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


# ---------------------------------------------------------------- anchor_map_norm
# two pixels, anchors e1, e2 of R^3 (orthogonalization none), s = 2:
# p0 = (3, 0, 4): <., t1> = 3, |p0| = 5 -> cosine 0.6; f = (6, 0) -> softmax_1 = 1/(1+e^-6)
# p1 = (1, 1, 0): <., t1> = 1, |p1| = sqrt 2 -> cosine 0.7071; f = (2, 2) -> softmax_1 = 0.5
# dot ranks p0 above p1, cosine p1 above p0: not monotone in one another
@pytest.mark.parametrize('norm,want', [
    ('dot', [3.0, 1.0]),
    ('cosine', [0.6, 1 / math.sqrt(2)]),
    ('softmax', [1 / (1 + math.exp(-6.0)), 0.5]),
    ('sigmoid', [1 / (1 + math.exp(-6.0)), 1 / (1 + math.exp(-2.0))]),
])
def test_anchor_map_norms_by_hand(norm, want):
    head = PatchMILHead(num_classes=2, in_channels=3, anchor_embeddings=torch.eye(2, 3),
                        orthogonalization='none', logit_scale=2.0, map_type='anchor',
                        anchor_map_label='gt', anchor_map_norm=norm)
    z = torch.tensor([[3.0, 0.0, 4.0], [1.0, 1.0, 0.0]]).T.reshape(1, 3, 1, 2)
    out = head.predict(z, [_sample(0, [[-1, -1]])])[0]
    torch.testing.assert_close(out.pred_map[0], torch.tensor(want))
    # class 1's map: p0 scores 0 / 0 / 1 - softmax_1
    out = head.predict(z, [_sample(1, [[-1, -1]])])[0]
    assert out.pred_map[0, 0].item() == pytest.approx(
        {'dot': 0.0, 'cosine': 0.0, 'softmax': 1 / (1 + math.exp(6.0)), 'sigmoid': 0.5}[norm],
        abs=1e-7)


# ---------------------------------------------------------------- kd_bg
def _kd_bg_head(kd_bg, **kw):
    torch.manual_seed(0)  # g's initial weights: equal in heads compared with each other
    return PatchMILHead(num_classes=2, in_channels=3, anchor_embeddings=torch.eye(2, 3),
                        orthogonalization='none', logit_scale=2.0, kd_bg=kd_bg,
                        lambda_kd_bg=0.5, **kw)


# pixels p0 = (3, 0, 4) FG, p1 = (1, -1, 0) BG, p2 = (0, 2, 0) BG, image class y = 0;
# f(p1) = (2, -2), f(p2) = (0, 4)
_Z = torch.tensor([[3.0, 0.0, 4.0], [1.0, -1.0, 0.0], [0.0, 2.0, 0.0]]).T.reshape(1, 3, 1, 3)


def _uniform_kl(f):
    """KL(u || softmax f) for two classes, from the definition."""
    p = [math.exp(v) / sum(math.exp(u) for u in f) for v in f]
    return sum(0.5 * math.log(0.5 / q) for q in p)


@pytest.mark.parametrize('reduction', ['mean', 'sum'])
def test_kd_bg_uniform_by_hand(reduction):
    head = _kd_bg_head('uniform', loss_reduction=reduction)
    losses = head.loss(_Z, [_sample(0, [[1, 0, 0]])])
    terms = [_uniform_kl([2.0, -2.0]), _uniform_kl([0.0, 4.0])]
    want = 0.5 * (sum(terms) if reduction == 'sum' else sum(terms) / 2)
    assert losses['loss_kd_bg'].item() == pytest.approx(want, rel=1e-6)
    # the other losses are those of the head without the term
    base = _kd_bg_head('none', loss_reduction=reduction).loss(_Z, [_sample(0, [[1, 0, 0]])])
    assert set(base) == {'loss_kd', 'loss_patch', 'loss_img'}
    for k in base:
        torch.testing.assert_close(losses[k], base[k])


def test_kd_bg_negative_by_hand():
    """-log(1 - sigmoid(f(z_p, t_y))) over the BG pixels, y the image's class (1 here:
    f(p1, t_1) = -2, f(p2, t_1) = 4), averaged; the FG pixel does not enter."""
    head = _kd_bg_head('negative')
    losses = head.loss(_Z, [_sample(1, [[1, 0, 0]])])
    want = 0.5 * (math.log(1 + math.exp(-2.0)) + math.log(1 + math.exp(4.0))) / 2
    assert losses['loss_kd_bg'].item() == pytest.approx(want, rel=1e-6)


def test_kd_bg_without_bg_samples_is_zero_with_graph():
    head = _kd_bg_head('uniform')
    z = _Z.clone().requires_grad_(True)
    loss = head.loss(z, [_sample(0, [[1, -1, 1]])])['loss_kd_bg']
    assert loss.item() == 0.0
    loss.backward()
    assert z.grad is not None


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
    (dict(anchor_embeddings=E, anchor_map_norm='l2'), ValueError,
     "anchor_map_norm must be one of .*'l2'"),
    (dict(anchor_embeddings=E, kd_bg='zero'), ValueError, "kd_bg must be one of .*'zero'"),
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
