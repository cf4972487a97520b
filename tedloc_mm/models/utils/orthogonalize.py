"""Orthogonalisation of class text anchors (paper §3.1, "Text embeddings orthogonalization").

All functions take and return a (K, d) matrix whose row k is the anchor t_k of class k.
The computation runs in float64 and the result is returned in the input dtype.

``qr`` (the paper's choice)
    Q from the reduced QR decomposition of the d x K matrix E^T = [e_1 ... e_K]:
    t_k = q_k. Needs K <= d. Gram-Schmidt order is kept: span(t_1..t_k) =
    span(e_1..e_k) for every k, so t_1 is e_1 normalised and later classes are what is
    left of them after removing the earlier ones. The sign of each column is fixed so
    that <t_k, e_k> = R_kk > 0 (LAPACK may return either sign).
``svd`` (our extension)
    The polar factor U V^T of E = U S V^T: the matrix with orthonormal rows (K <= d)
    closest to E in Frobenius norm; it treats all classes symmetrically instead of in
    list order. For K > d, where K orthonormal vectors cannot exist in R^d, the same
    formula gives the tightest frame: columns orthonormal, T^T T = I_d, rows of mean
    squared norm d / K.
``none``
    The raw embeddings (the paper's Table 5 ablation "w/o orthogonalization").
"""
import torch

ORTHOGONALIZATIONS = ('qr', 'svd', 'none')


def qr_orthogonalize(embeddings: torch.Tensor, rank_tol: float = 1e-6) -> torch.Tensor:
    """QR anchors: (K, d) -> (K, d) with orthonormal rows, order and span kept.

    Raises ValueError if K > d, or if an embedding is (numerically) a linear
    combination of the earlier ones (e.g. a duplicated class name), naming the row.
    """
    num_classes, dim = embeddings.shape
    if num_classes > dim:
        raise ValueError(
            f'QR orthogonalisation needs K <= d, but there are K={num_classes} classes '
            f'and the embeddings have d={dim} dimensions: at most d vectors of R^d can be '
            f'orthonormal. Use a text model with d >= {num_classes} (open_clip ViT-H-14 / '
            f'EVA01-g-14 give 1024), or orthogonalization="svd" (tightest frame).')
    e64 = embeddings.detach().to(torch.float64)
    q, r = torch.linalg.qr(e64.T, mode='reduced')  # q: (d, K), r: (K, K)
    diag = torch.diagonal(r)
    scale = e64.norm(dim=1).clamp_min(torch.finfo(torch.float64).tiny)
    degenerate = (diag.abs() / scale) < rank_tol
    if degenerate.any():
        k = int(torch.nonzero(degenerate)[0])
        raise ValueError(
            f'QR orthogonalisation: anchor embedding {k} is (numerically) a linear '
            f'combination of embeddings 0..{k - 1} (|R_kk| / |e_k| < {rank_tol}); '
            f'is a class name duplicated?')
    # fix LAPACK's sign ambiguity: column k positively correlated with e_k (R_kk > 0)
    q = q * torch.sign(diag)[None, :]
    return q.T.contiguous().to(embeddings.dtype)


def svd_orthogonalize(embeddings: torch.Tensor) -> torch.Tensor:
    """Polar-factor anchors U V^T: (K, d) -> (K, d); see the module docstring."""
    e64 = embeddings.detach().to(torch.float64)
    u, _, vh = torch.linalg.svd(e64, full_matrices=False)
    return (u @ vh).to(embeddings.dtype)


def orthogonalize_anchors(embeddings: torch.Tensor, method: str = 'qr') -> torch.Tensor:
    """Apply ``method`` in ('qr', 'svd', 'none') to (K, d) anchors."""
    if embeddings.dim() != 2:
        raise ValueError(f'anchor embeddings must be (K, d), got shape '
                         f'{tuple(embeddings.shape)}')
    if method == 'qr':
        return qr_orthogonalize(embeddings)
    if method == 'svd':
        return svd_orthogonalize(embeddings)
    if method == 'none':
        return embeddings.detach().clone()
    raise ValueError(f'orthogonalization must be one of {ORTHOGONALIZATIONS}, got {method!r}')
