"""apis/linear_probe.py: the fitted weights, put in a K-way softmax head, give
scikit-learn's own probabilities (two classes and three); a class without training
image is refused; C is chosen on val (numbers by hand), or fixed (the demo's, which
float noise of the features does not move); the feature extractor refuses unpooled
features."""
import os.path as osp

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression

from tedloc_mm.engine.linear_probe import extract_pooled_features, fit_linear_probe

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _softmax_head(result, x):
    """What the classifier's LinearClsHead computes with the probe's weights."""
    logits = x @ result['weight'].T.astype(np.float64) + result['bias']
    logits -= logits.max(1, keepdims=True)
    p = np.exp(logits)
    return p / p.sum(1, keepdims=True)


def _blobs(rng, centres, per_class, spread=0.6):
    x = np.concatenate([c + spread * rng.standard_normal((per_class, len(c)))
                        for c in centres]).astype(np.float32)
    y = np.repeat(np.arange(len(centres)), per_class)
    return x, y


@pytest.mark.parametrize('num_classes', [2, 3])
def test_head_weights_reproduce_sklearn_probabilities(num_classes):
    """Two classes: scikit-learn keeps one weight vector w (p(1) = sigmoid(w.x + b));
    the head puts it on class 1 and zeros on class 0, and softmax([0, w.x + b]) is
    the same probability. Three: the multinomial weights as they are."""
    rng = np.random.default_rng(num_classes)
    centres = np.array([[1.0, 0.0, 0.5], [-1.0, 0.5, 0.0], [0.0, -1.0, -0.5]])[:num_classes]
    train, val = _blobs(rng, centres, 20), _blobs(rng, centres, 8)
    result = fit_linear_probe(train, val, num_classes, c_grid=(0.5,))
    assert result['weight'].shape == (num_classes, 3) and result['bias'].shape == (num_classes,)
    ref = LogisticRegression(C=0.5, max_iter=1000).fit(*train)
    x = np.concatenate([train[0], val[0]]).astype(np.float64)
    np.testing.assert_allclose(_softmax_head(result, x), ref.predict_proba(x), atol=1e-5)
    if num_classes == 2:
        assert not result['weight'][0].any() and result['bias'][0] == 0
    assert result['train_acc'] == 100.0 * (ref.predict(train[0]) == train[1]).mean()
    assert result['val_acc'] == 100.0 * (ref.predict(val[0]) == val[1]).mean()


def test_a_class_without_training_image_is_refused():
    rng = np.random.default_rng(0)
    x, y = _blobs(rng, np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]]), 5)
    keep = y != 1
    with pytest.raises(ValueError, match=r'classes \[1\] have no training image.*4 classes'):
        fit_linear_probe((x[keep], y[keep]), (x, y), num_classes=4)
    with pytest.raises(ValueError, match=r'classes \[4\] have no training image'):
        fit_linear_probe((x, y), (x, y), num_classes=5)


def _imbalanced():
    """1-D features: train 30 of class 0 near +1, 10 of class 1 near -1; val 5 + 5.

    C = 1e-4 shrinks w to about -0.0015 while the (unpenalised) intercept settles near
    log(10 / 30): every image then goes to class 0, the majority, so val accuracy is
    5 / 10 = 50 %. C = 10 separates the classes: 100 %."""
    xt = np.concatenate([1 + 0.01 * np.arange(30), -1 - 0.01 * np.arange(10)])[:, None]
    yt = np.array([0] * 30 + [1] * 10)
    xv = np.array([1.0] * 5 + [-1.0] * 5)[:, None]
    yv = np.array([0] * 5 + [1] * 5)
    return (xt.astype(np.float32), yt), (xv.astype(np.float32), yv)


def test_c_is_chosen_on_val():
    train, val = _imbalanced()
    result = fit_linear_probe(train, val, 2, c_grid=(1e-4, 10.0))
    assert result['val_acc_per_C'] == {1e-4: 50.0, 10.0: 100.0}
    assert result['C'] == 10.0 and result['val_acc'] == 100.0
    assert result['train_acc'] == 100.0
    # the weights are those of the chosen C: class 1 for x < 0
    assert _softmax_head(result, np.array([[-1.0]]))[0, 1] > 0.9
    # in the order given, and on a tie the first C wins
    again = fit_linear_probe(train, val, 2, c_grid=(10.0, 1e-4, 100.0))
    assert again['val_acc_per_C'] == {10.0: 100.0, 1e-4: 50.0, 100.0: 100.0}
    assert again['C'] == 10.0
    # where only the small C is offered, it is what is used (majority class)
    small = fit_linear_probe(train, val, 2, c_grid=(1e-4,))
    assert small['C'] == 1e-4 and small['val_acc'] == 50.0 and small['train_acc'] == 75.0


class _Features(torch.nn.Module):
    """A stand-in classifier: ``extract_feat`` returns fixed features per image."""

    def __init__(self, pooled=True):
        super().__init__()
        self.pooled = pooled
        self.data_preprocessor = lambda batch, training: batch

    def extract_feat(self, inputs):
        return (inputs.mean((2, 3)) if self.pooled else inputs,)


def test_feature_extractor_keeps_order_and_refuses_unpooled_features():
    from mmpretrain.structures import DataSample
    g = torch.Generator().manual_seed(0)
    images = torch.randn(5, 4, 2, 2, generator=g)
    labels = [3, 1, 4, 1, 5]
    batches = [dict(inputs=images[:3], data_samples=[DataSample().set_gt_label(k)
                                                     for k in labels[:3]]),
               dict(inputs=images[3:], data_samples=[DataSample().set_gt_label(k)
                                                     for k in labels[3:]])]
    feats, ys = extract_pooled_features(_Features(), batches)
    np.testing.assert_allclose(feats, images.mean((2, 3)).numpy())
    assert feats.dtype == np.float32 and ys.tolist() == labels
    with pytest.raises(ValueError, match=r'\(3, 4, 2, 2\) features.*GlobalAveragePooling'):
        extract_pooled_features(_Features(pooled=False), batches)


PROBE_CFG = 'tedloc_mm/configs/demo/linear-probe_efficientnet-lite0_stamps.py'


def _overlapping_blobs(seed, k=4, dim=8, per_train=15, per_val=40):
    """Four overlapping classes: val accuracies of neighbouring C lie 1-2 images apart,
    like the demo's (85.48 / 85.95 / 85.24 / 85.71 on 420 val images)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((k, dim))

    def blobs(n):
        x = np.concatenate([c + 1.2 * rng.standard_normal((n, dim)) for c in centres])
        return x.astype(np.float32), np.repeat(np.arange(k), n)
    return blobs(per_train), blobs(per_val)


@pytest.mark.parametrize('seed, noise_seed', [(58, 1000), (67, 1000)])
def test_demo_probe_c_does_not_move_with_float_noise(seed, noise_seed):
    """The demo config's C, as tools/train_linear_probe.py reads it, on features and on
    the same features times (1 + 1e-6 * N(0, 1)): the same C and the same val accuracy.
    On these two data sets the best-on-val rule (probe_c = None) picks another C after
    the perturbation (C = 0.001 -> 0.1 and 0.1 -> 0.001 when this test was written)."""
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(REPO, PROBE_CFG))
    train, val = _overlapping_blobs(seed)
    noise = np.random.default_rng(noise_seed).standard_normal(train[0].shape)
    noisy = ((train[0] * (1 + 1e-6 * noise)).astype(np.float32), train[1])
    assert np.abs(noisy[0] / train[0] - 1).max() < 1e-5  # a float-noise-sized change
    runs = [fit_linear_probe(t, val, 4, cfg.probe_c_grid, c=cfg.get('probe_c', None))
            for t in (train, noisy)]
    assert runs[0]['C'] == runs[1]['C'] == cfg.probe_c
    assert runs[0]['C_source'] == runs[1]['C_source'] == 'fixed'
    assert abs(runs[0]['val_acc'] - runs[1]['val_acc']) <= 100.0 / len(val[1])


def test_a_fixed_c_is_used_and_the_grid_still_reported():
    """c = 1e-4 with the grid (10,): the weights of 1e-4 (majority class, val 50 %) even
    though 10 is better on val; both C reported; a C not > 0 refused."""
    train, val = _imbalanced()
    result = fit_linear_probe(train, val, 2, c_grid=(10.0,), c=1e-4)
    assert result['C'] == 1e-4 and result['C_source'] == 'fixed'
    assert result['val_acc_per_C'] == {10.0: 100.0, 1e-4: 50.0}
    assert result['val_acc'] == 50.0 and result['train_acc'] == 75.0
    picked = fit_linear_probe(train, val, 2, c_grid=(10.0, 1e-4))
    assert picked['C'] == 10.0 and picked['C_source'] == 'val'
    with pytest.raises(ValueError, match=r"C must be > 0, got 0"):
        fit_linear_probe(train, val, 2, c_grid=(10.0,), c=0)
