"""PatchMILHead: each equation of paper §3 (Eq. 1-5, the two maps) against hand computation.

Tiny setting: D = 3, K = 2, anchors t_0 = e_x, t_1 = e_y (orthogonalization 'none'),
g(z) = sigmoid(z_x + b) (weights set by hand), logit scale s = 2.
"""
import math

import numpy as np
import pytest
import torch
from mmpretrain.structures import DataSample

from tedloc_mm.models.heads import PatchMILHead

S = 2.0
T = torch.tensor([[1., 0., 0.], [0., 1., 0.]])


def sig(x):
    return 1 / (1 + math.exp(-x))


def ce(logits, y):
    return math.log(sum(math.exp(v) for v in logits)) - logits[y]


def make_head(bias=0.0, **kw):
    head = PatchMILHead(num_classes=2, in_channels=3, anchor_embeddings=T,
                        orthogonalization='none', logit_scale=S, **kw)
    with torch.no_grad():
        head.fg_classifier.weight.copy_(torch.tensor([1., 0., 0.]).view(1, 3, 1, 1))
        head.fg_classifier.bias.fill_(bias)
    return head


def sample(label, plm, img_shape=(1, 2)):
    ds = DataSample(metainfo=dict(img_shape=img_shape, img_id=f'img{label}')).set_gt_label(label)
    ds.pseudo_label_map = torch.as_tensor(plm)
    return ds


# one image, two pixels: z_1 = (1, 2, 0), z_2 = (0, 1, 3); shape (1, D=3, 1, 2)
Z1, Z2 = [1., 2., 0.], [0., 1., 3.]
Z = torch.tensor([Z1, Z2]).T.reshape(1, 3, 1, 2)


def test_aggregate_eq3_by_hand():
    head = make_head(bias=0.0)
    g1, g2 = sig(1.0), sig(0.0)  # g = sigmoid(z_x)
    a1, a2 = g1 / (g1 + g2), g2 / (g1 + g2)
    h_ref = [a1 * u + a2 * v for u, v in zip(Z1, Z2)]
    h = head.aggregate(Z, head.fg_logits(Z))
    torch.testing.assert_close(h[0], torch.tensor(h_ref))


def test_aggregate_matches_naive_ratio_on_random_input():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(2, 4, 3, 5, generator=g)
    logits = torch.randn(2, 3, 5, generator=g) * 3
    gs = torch.sigmoid(logits).flatten(1)
    a = gs / gs.sum(1, keepdim=True)
    ref = (a[:, None] * z.flatten(2)).sum(-1)
    torch.testing.assert_close(PatchMILHead.aggregate(z, logits), ref)


def test_aggregate_finite_when_sum_g_vanishes():
    # logits -999 and -1000: sigmoid underflows to exactly 0 in float32 (0/0 naively),
    # the limit of g_p / sum g is exp(l_p) / sum exp(l_j) = (e, 1) / (e + 1)
    head = make_head(bias=-1000.0)
    fg = head.fg_logits(Z)
    assert torch.sigmoid(fg).sum() == 0
    h = head.aggregate(Z, fg)
    e = math.e
    a1, a2 = e / (e + 1), 1 / (e + 1)
    assert torch.isfinite(h).all()
    torch.testing.assert_close(h[0], torch.tensor([a1 * u + a2 * v for u, v in zip(Z1, Z2)]))
    # and the gradient is finite too
    z = Z.clone().requires_grad_(True)
    head.aggregate(z, head.fg_logits(z)).sum().backward()
    assert torch.isfinite(z.grad).all()


def test_losses_eq1_2_4_5_by_hand():
    lam = dict(lambda_kd=0.5, lambda_patch=0.25, lambda_img=2.0)
    head = make_head(bias=0.0, **lam)
    y = 0
    losses = head.loss(Z, [sample(y, [[1, 0]])])
    # (1) L_KD over FG pixel z_1: f = s <z_1, t_k> = (2, 4)
    kd = ce([S * Z1[0], S * Z1[1]], y)
    # (2) P_CL over both sampled pixels, mean: z_1 FG (g = sig(1)), z_2 BG (g = sig(0))
    pcl = (-math.log(sig(1.0)) - math.log(1 - sig(0.0))) / 2
    # (3)+(4) I_CL on h
    g1, g2 = sig(1.0), sig(0.0)
    h = [(g1 * u + g2 * v) / (g1 + g2) for u, v in zip(Z1, Z2)]
    icl = ce([S * h[0], S * h[1]], y)
    assert losses['loss_kd'].item() == pytest.approx(0.5 * kd, rel=1e-5)
    assert losses['loss_patch'].item() == pytest.approx(0.25 * pcl, rel=1e-5)
    assert losses['loss_img'].item() == pytest.approx(2.0 * icl, rel=1e-5)


def reference_losses(z, plms, labels, anchors, w, b, s, lambdas):
    """Eq. 1-5 of the paper written out in float64 with NumPy, each sum replaced by the
    mean the head documents (over the FG-sampled pixels of the batch for L_KD, over all
    sampled pixels of the batch for P_CL, over the images for I_CL).

    z (B, D, h, w); plms (B, h, w) with 1 FG, 0 BG, -1 unsampled; anchors T (K, D);
    g(z_p) = sigmoid(w . z_p + b); f(v, t_k) = s <v, t_k>."""
    z = np.asarray(z, np.float64)
    T = np.asarray(anchors, np.float64)

    def ce(logits, y):                               # -log softmax(logits)[y]
        m = logits.max()
        return m + np.log(np.exp(logits - m).sum()) - logits[y]

    def sigmoid(x):
        return 1.0 / (1.0 + np.exp(-x))

    kd, pcl, icl = [], [], []
    for i, (plm, y) in enumerate(zip(plms, labels)):
        pixels = z[i].reshape(z.shape[1], -1).T            # (P, D)
        labels_p = np.asarray(plm).ravel()
        g = sigmoid(pixels @ np.asarray(w, np.float64) + b)
        for z_p, y_p, g_p in zip(pixels, labels_p, g):
            if y_p == 1:                                     # (1) over omega+
                kd.append(ce(s * T @ z_p, y))
            if y_p >= 0:                                     # (2) over omega
                pcl.append(-np.log(g_p) if y_p == 1 else -np.log(1 - g_p))
        a = g / g.sum()                                      # (3)
        h = (a[:, None] * pixels).sum(0)
        icl.append(ce(s * T @ h, y))                         # (4)
    l_kd, p_cl, i_cl = np.mean(kd), np.mean(pcl), np.mean(icl)
    lam1, lam2, lam3 = lambdas
    return dict(loss_kd=lam1 * l_kd, loss_patch=lam2 * p_cl, loss_img=lam3 * i_cl,
                total=lam1 * l_kd + lam2 * p_cl + lam3 * i_cl)  # (5)


def test_losses_are_means_over_batch_pixels_and_images():
    g = torch.Generator().manual_seed(3)
    emb = torch.randn(4, 6, generator=g)
    lambdas = (0.5, 2.0, 1.5)
    head = PatchMILHead(num_classes=4, in_channels=6, anchor_embeddings=emb,
                        orthogonalization='qr', logit_scale=3.0, lambda_kd=lambdas[0],
                        lambda_patch=lambdas[1], lambda_img=lambdas[2])
    with torch.no_grad():
        head.fg_classifier.weight.copy_(torch.randn(1, 6, 1, 1, generator=g))
        head.fg_classifier.bias.fill_(0.3)
    # the QR anchors from NumPy: Q of E^T with the signs making R's diagonal positive
    q, r = np.linalg.qr(emb.numpy().astype(np.float64).T)
    anchors = (q * np.sign(np.diag(r))).T
    z = torch.randn(2, 6, 3, 3, generator=g)
    plm0 = torch.tensor([[1, 1, -1], [0, -1, -1], [-1, 1, 0]])   # 3 FG, 2 BG
    plm1 = torch.tensor([[-1, -1, -1], [1, -1, 0], [0, 0, -1]])  # 1 FG, 3 BG
    labels = [2, 1]
    losses = head.loss(z, [sample(2, plm0), sample(1, plm1)])
    want = reference_losses(z.numpy(), [plm0.numpy(), plm1.numpy()], labels, anchors,
                            w=head.fg_classifier.weight.detach().numpy().ravel(), b=0.3,
                            s=3.0, lambdas=lambdas)
    for key in ('loss_kd', 'loss_patch', 'loss_img'):
        assert losses[key].item() == pytest.approx(want[key], rel=1e-5), key
    assert sum(losses.values()).item() == pytest.approx(want['total'], rel=1e-5)


def _two_images():
    """Image A (label 0): z_1 FG, z_2 BG; image B (label 1): z_1 and z_2 both FG.
    Per image, Eq. 1-2 as written (sums over its sampled pixels)."""
    kd_a = ce([S * Z1[0], S * Z1[1]], 0)
    kd_b = ce([S * Z1[0], S * Z1[1]], 1) + ce([S * Z2[0], S * Z2[1]], 1)
    pcl_a = -math.log(sig(1.0)) - math.log(1 - sig(0.0))   # g = sigmoid(z_x)
    pcl_b = -math.log(sig(1.0)) - math.log(sig(0.0))
    z = torch.cat([Z, Z])
    samples = [sample(0, [[1, 0]]), sample(1, [[1, 1]])]
    return z, samples, (kd_a, kd_b), (pcl_a, pcl_b)


def test_sum_reduction_is_eq1_2_per_image_averaged_over_images():
    z, samples, (kd_a, kd_b), (pcl_a, pcl_b) = _two_images()
    losses = make_head(loss_reduction='sum').loss(z, samples)
    assert losses['loss_kd'].item() == pytest.approx((kd_a + kd_b) / 2, rel=1e-5)
    assert losses['loss_patch'].item() == pytest.approx((pcl_a + pcl_b) / 2, rel=1e-5)
    # loss_img is a mean over images with either reduction
    mean = make_head().loss(z, samples)
    assert losses['loss_img'].item() == pytest.approx(mean['loss_img'].item(), rel=1e-6)


def test_mean_reduction_weights_images_by_their_sample_count():
    """The default: means over the batch's sampled pixels (3 FG, 4 sampled), which is
    not the mean of per-image means when the images have different counts (A has 1
    FG pixel, B has 2)."""
    z, samples, (kd_a, kd_b), (pcl_a, pcl_b) = _two_images()
    losses = make_head().loss(z, samples)
    assert losses['loss_kd'].item() == pytest.approx((kd_a + kd_b) / 3, rel=1e-5)
    assert losses['loss_patch'].item() == pytest.approx((pcl_a + pcl_b) / 4, rel=1e-5)
    per_image_means = (kd_a / 1 + kd_b / 2) / 2
    assert abs(losses['loss_kd'].item() - per_image_means) > 1e-3
    with pytest.raises(ValueError, match=r"loss_reduction must be one of \('mean', 'sum'\), "
                       r"got 'none'"):
        make_head(loss_reduction='none')


def test_no_fg_pixels_gives_zero_kd_with_graph():
    head = make_head()
    z = Z.clone().requires_grad_(True)
    losses = head.loss(z, [sample(1, [[0, -1]])])
    assert losses['loss_kd'].item() == 0 and losses['loss_kd'].requires_grad
    sum(losses.values()).backward()
    assert torch.isfinite(z.grad).all()


def test_normalized_embeddings_option():
    head = make_head(normalize_embeddings=True)
    v = torch.tensor([[3., 4., 0.]])
    torch.testing.assert_close(head.class_logits(v), torch.tensor([[S * 0.6, S * 0.8]]))
    assert make_head().class_logits(v).tolist() == [[S * 3, S * 4]]


def test_pseudo_labels_on_a_finer_grid_by_hand():
    """A 2 x 2 sampling grid over the 1 x 2 input of a 1 x 2 decoder: both rows of
    cells have their centre in the decoder's one row, each sampled cell one term."""
    head = make_head(bias=0.0)
    losses = head.loss(Z, [sample(0, [[1, 0], [0, 1]])])
    g1, g2 = sig(1.0), sig(0.0)  # g at z_1, z_2
    patch = -(math.log(g1) + math.log(1 - g2) + math.log(1 - g1) + math.log(g2)) / 4
    kd = (ce([S * 1, S * 2], 0) + ce([0., S * 1], 0)) / 2  # FG cells: z_1 and z_2
    assert losses['loss_patch'].item() == pytest.approx(patch, rel=1e-6)
    assert losses['loss_kd'].item() == pytest.approx(kd, rel=1e-6)


def test_pseudo_label_bad_values():
    with pytest.raises(ValueError, match='found'):
        make_head().loss(Z, [sample(0, [[2, 0]])])


def test_predict_scores_and_fg_map_by_hand():
    head = make_head(bias=0.0)
    out = head.predict(Z, [sample(0, [[-1, -1]], img_shape=(1, 2))])[0]
    g1, g2 = sig(1.0), sig(0.0)
    h = [(g1 * u + g2 * v) / (g1 + g2) for u, v in zip(Z1, Z2)]
    f = [S * h[0], S * h[1]]
    p1 = 1 / (1 + math.exp(f[0] - f[1]))
    torch.testing.assert_close(out.pred_score, torch.tensor([1 - p1, p1]))
    assert out.pred_label.tolist() == [int(p1 > 0.5)]
    torch.testing.assert_close(out.pred_map, torch.tensor([[g1, g2]]))


def test_predict_map_is_resized_to_img_shape():
    head = make_head(bias=0.0)
    out = head.predict(Z, [sample(0, [[-1, -1]], img_shape=(4, 8))])[0]
    assert out.pred_map.shape == (4, 8)
    # bilinear, align_corners=False: the outer quarter copies each end value
    assert out.pred_map[:, :2].allclose(torch.tensor(sig(1.0)))
    assert out.pred_map[:, -2:].allclose(torch.tensor(sig(0.0)))
    assert (out.pred_map[0, 1:] <= out.pred_map[0, :-1]).all()  # monotone in between


@pytest.mark.parametrize('label_src,cls', [('gt', 0), ('pred', 1)])
def test_anchor_map_table4(label_src, cls):
    head = make_head(map_type='anchor', anchor_map_label=label_src)
    out = head.predict(Z, [sample(0, [[-1, -1]])])[0]
    # <z_p, t_c> with t_0 = e_x, t_1 = e_y: the x or y components of z_1, z_2
    torch.testing.assert_close(out.pred_map, torch.tensor([[Z1[cls], Z2[cls]]]))


def test_anchor_width_mismatch_and_missing_anchor_file(tmp_path):
    with pytest.raises(ValueError, match='d=3.*in_channels=4'):
        PatchMILHead(num_classes=2, in_channels=4, anchor_embeddings=T)
    with pytest.raises(FileNotFoundError, match='build_text_anchors.py'):
        PatchMILHead(num_classes=2, in_channels=3, anchor_file=str(tmp_path / 'none.pth'))


def test_qr_head_k_greater_than_d():
    with pytest.raises(ValueError, match=r'K=4.*d=3'):
        PatchMILHead(num_classes=4, in_channels=3, anchor_embeddings=torch.randn(
            4, 3, generator=torch.Generator().manual_seed(0)))


def test_anchors_are_frozen_buffer_and_orthonormal():
    head = PatchMILHead(num_classes=3, in_channels=5, anchor_embeddings=torch.randn(
        3, 5, generator=torch.Generator().manual_seed(1)))
    assert 'anchors' in dict(head.named_buffers())
    assert all('anchors' not in n for n, _ in head.named_parameters())
    torch.testing.assert_close(head.anchors @ head.anchors.T, torch.eye(3), atol=1e-5,
                               rtol=0)
