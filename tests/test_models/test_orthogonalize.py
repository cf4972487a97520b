"""QR / SVD / none anchor orthogonalisation (paper §3.1) against hand-made references."""
import pytest
import torch

from tedloc_mm.models.utils.orthogonalize import orthogonalize_anchors


def gram_schmidt(e: torch.Tensor) -> torch.Tensor:
    """Textbook (modified) Gram-Schmidt on the rows of e, in order, float64."""
    out = []
    for v in e.to(torch.float64):
        w = v.clone()
        for q in out:
            w = w - (w @ q) * q
        out.append(w / w.norm())
    return torch.stack(out)


@pytest.fixture
def emb():
    g = torch.Generator().manual_seed(0)
    return torch.randn(5, 8, generator=g, dtype=torch.float64)


def test_qr_rows_orthonormal_and_equal_to_gram_schmidt(emb):
    t = orthogonalize_anchors(emb, 'qr')
    assert t.shape == emb.shape
    torch.testing.assert_close(t @ t.T, torch.eye(5, dtype=t.dtype), atol=1e-10, rtol=0)
    # same vectors, same order, same signs as Gram-Schmidt of e_1, e_2, ...
    torch.testing.assert_close(t, gram_schmidt(emb), atol=1e-10, rtol=0)


def test_qr_sign_and_nested_spans(emb):
    t = orthogonalize_anchors(emb, 'qr')
    # t_k positively correlated with e_k (the sign ambiguity of QR is fixed)
    assert ((t * emb).sum(1) > 0).all()
    for k in range(1, 6):
        # span(t_1..t_k) == span(e_1..e_k): e_j (j<k) is reproduced by its projection
        basis = t[:k]
        proj = emb[:k] @ basis.T @ basis
        torch.testing.assert_close(proj, emb[:k], atol=1e-10, rtol=0)
        # and t_k is orthogonal to span(e_1..e_{k-1}) (Gram-Schmidt order kept)
        if k > 1:
            assert (t[k - 1] @ emb[:k - 1].T).abs().max() < 1e-10


def test_qr_first_anchor_is_normalised_first_embedding(emb):
    t = orthogonalize_anchors(emb, 'qr')
    torch.testing.assert_close(t[0], emb[0] / emb[0].norm(), atol=1e-12, rtol=0)


def test_qr_k_greater_than_d_names_both():
    with pytest.raises(ValueError, match=r'K=9.*d=8'):
        orthogonalize_anchors(torch.randn(9, 8, generator=torch.Generator().manual_seed(0)), 'qr')


def test_qr_dependent_rows_rejected():
    e = torch.randn(3, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    e[2] = 2 * e[0] - e[1]
    with pytest.raises(ValueError, match='anchor embedding 2'):
        orthogonalize_anchors(e, 'qr')


def test_qr_keeps_dtype_float32():
    e = torch.randn(4, 6, generator=torch.Generator().manual_seed(2))
    assert orthogonalize_anchors(e, 'qr').dtype == torch.float32


def test_svd_is_nearest_orthonormal_rows(emb):
    t = orthogonalize_anchors(emb, 'svd')
    torch.testing.assert_close(t @ t.T, torch.eye(5, dtype=t.dtype), atol=1e-10, rtol=0)
    dist = (t - emb).norm()
    # closer to E than the QR anchors and than random orthonormal-row matrices
    assert dist <= (orthogonalize_anchors(emb, 'qr') - emb).norm() + 1e-12
    g = torch.Generator().manual_seed(1)
    for _ in range(20):
        q, _ = torch.linalg.qr(torch.randn(8, 5, generator=g, dtype=torch.float64))
        assert dist <= (q.T - emb).norm()


def test_svd_k_greater_than_d_is_tight_frame():
    e = torch.randn(12, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    t = orthogonalize_anchors(e, 'svd')
    torch.testing.assert_close(t.T @ t, torch.eye(4, dtype=t.dtype), atol=1e-10, rtol=0)
    torch.testing.assert_close((t ** 2).sum(1).mean(), torch.tensor(4 / 12, dtype=t.dtype))


def test_none_returns_raw_copy(emb):
    t = orthogonalize_anchors(emb, 'none')
    assert torch.equal(t, emb) and t.data_ptr() != emb.data_ptr()


def test_unknown_method():
    with pytest.raises(ValueError, match='qr'):
        orthogonalize_anchors(torch.randn(2, 3, generator=torch.Generator().manual_seed(4)), 'gram')
