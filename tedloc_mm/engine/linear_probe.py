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
"""
from typing import Dict, Iterable, Sequence, Tuple

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
                     max_iter: int = 1000) -> Dict:
    """Fit one logistic regression per ``C`` of ``c_grid``, keep the best on ``val``.

    Returns dict(weight (K, C) float32, bias (K,), C, train_acc, val_acc, val_acc_per_C)
    with accuracies in percent; the first best ``C`` wins ties.
    """
    from sklearn.linear_model import LogisticRegression
    (xt, yt), (xv, yv) = train, val
    missing = sorted(set(range(num_classes)) - set(yt.tolist()))
    if missing:
        raise ValueError(f'classes {missing} have no training image: a linear probe over '
                         f'{num_classes} classes needs each')
    best, per_c = None, {}
    for c in c_grid:
        clf = LogisticRegression(C=c, max_iter=max_iter)
        clf.fit(xt, yt)
        acc = 100.0 * float((clf.predict(xv) == yv).mean()) if len(yv) else float('nan')
        per_c[float(c)] = acc
        if best is None or acc > best[1]:
            best = (clf, acc, c)
    clf, val_acc, c = best
    weight = np.zeros((num_classes, xt.shape[1]), np.float32)
    bias = np.zeros(num_classes, np.float32)
    if len(clf.classes_) == 2 and clf.coef_.shape[0] == 1:
        # binary: p(1) = sigmoid(w.x + b) = softmax([0, w.x + b])[1]
        weight[clf.classes_[1]], bias[clf.classes_[1]] = clf.coef_[0], clf.intercept_[0]
    else:
        weight[clf.classes_], bias[clf.classes_] = clf.coef_, clf.intercept_
    train_acc = 100.0 * float((clf.predict(xt) == yt).mean())
    return dict(weight=weight, bias=bias, C=float(c), train_acc=train_acc, val_acc=val_acc,
                val_acc_per_C=per_c)
