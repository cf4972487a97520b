"""Linear probe: a frozen pretrained backbone + a linear classifier fitted on its features.

The standard linear-probe protocol (as in CLIP's evaluation): the features of every
training image are computed once with the frozen backbone (and the classifier's neck,
e.g. global average pooling), then a multinomial logistic regression
(scikit-learn's L-BFGS solver) is fitted on them; its L2 strength ``C`` is chosen by
accuracy on the validation split. The weights are written into the MMPretrain
``ImageClassifier``'s ``LinearClsHead`` (``head.fc``), so the result is an ordinary
classifier checkpoint that every tool reads (Grad-CAM pseudo-labels, the CAM baseline).

Why a solver and not the Runner: with the backbone frozen, gradient steps through it
would recompute the same features every epoch (minutes on a CPU for what L-BFGS on
cached features does in about a second), and a convex problem has one optimum.

Why ``C`` can be fixed: on a few hundred val images the accuracies of neighbouring
``C`` values lie one or two images apart, and which of them wins moves with float noise
(another CPU, another BLAS): on the demo, two machines picked C = 1.0 and C = 0.01 from
the same images, and every later step moved with it. A config that sets ``probe_c``
uses that value (chosen once on val and written down in the config); the grid is then
still fitted and its val accuracies reported, but they choose nothing.
"""
from typing import Dict, Iterable, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn


@torch.no_grad()
def extract_pooled_features(model: nn.Module, loader: Iterable) -> Tuple[np.ndarray, np.ndarray]:
    """Neck outputs of an MMPretrain classifier over a dataloader.

    Returns (features float32 (N, C), labels int64 (N,)).
    """
    model.eval()
    feats, labels = [], []
    for batch in loader:
        data = model.data_preprocessor(batch, False)
        out = model.extract_feat(data['inputs'])
        out = out[-1] if isinstance(out, (tuple, list)) else out
        if out.dim() != 2:
            raise ValueError(f'the classifier gives {tuple(out.shape)} features; a linear '
                             'probe needs pooled (N, C) ones: add a GlobalAveragePooling neck')
        feats.append(out.float().cpu().numpy())
        labels += [int(s.gt_label.view(-1)[0]) for s in data['data_samples']]
    return np.concatenate(feats), np.asarray(labels, np.int64)


def fit_linear_probe(train: Tuple[np.ndarray, np.ndarray], val: Tuple[np.ndarray, np.ndarray],
                     num_classes: int, c_grid: Sequence[float] = (0.01, 0.1, 1.0, 10.0),
                     max_iter: int = 1000, c: Optional[float] = None) -> Dict:
    """Fit one logistic regression per ``C`` of ``c_grid``, keep the best on ``val``,
    or, when ``c`` is given, keep ``c`` (fitted too if not in the grid).

    Returns dict(weight (K, C) float32, bias (K,), C, C_source ('val' or 'fixed'),
    train_acc, val_acc, val_acc_per_C) with accuracies in percent; on val the first best
    ``C`` of the grid wins ties.
    """
    from sklearn.linear_model import LogisticRegression
    (xt, yt), (xv, yv) = train, val
    missing = sorted(set(range(num_classes)) - set(yt.tolist()))
    if missing:
        raise ValueError(f'classes {missing} have no training image: a linear probe over '
                         f'{num_classes} classes needs each')
    if c is not None and not c > 0:
        raise ValueError(f'the probe\'s C must be > 0, got {c!r}')
    best, fixed, per_c = None, None, {}
    grid = list(c_grid) + ([c] if c is not None and float(c) not in map(float, c_grid) else [])
    for value in grid:
        clf = LogisticRegression(C=value, max_iter=max_iter)
        clf.fit(xt, yt)
        acc = 100.0 * float((clf.predict(xv) == yv).mean()) if len(yv) else float('nan')
        per_c[float(value)] = acc
        if best is None or acc > best[1]:
            best = (clf, acc, value)
        if c is not None and float(value) == float(c):
            fixed = (clf, acc, value)
    clf, val_acc, c = fixed if c is not None else best
    weight = np.zeros((num_classes, xt.shape[1]), np.float32)
    bias = np.zeros(num_classes, np.float32)
    if len(clf.classes_) == 2 and clf.coef_.shape[0] == 1:
        # binary: p(1) = sigmoid(w.x + b) = softmax([0, w.x + b])[1]
        weight[clf.classes_[1]], bias[clf.classes_[1]] = clf.coef_[0], clf.intercept_[0]
    else:
        weight[clf.classes_], bias[clf.classes_] = clf.coef_, clf.intercept_
    train_acc = 100.0 * float((clf.predict(xt) == yt).mean())
    return dict(weight=weight, bias=bias, C=float(c),
                C_source='val' if fixed is None else 'fixed', train_acc=train_acc,
                val_acc=val_acc, val_acc_per_C=per_c)
