"""CLIP-ES's class-aware attention-based affinity (CAA) refinement of a patch-grid CAM.

From the public CLIP-ES code (Lin et al., CVPR 2023, ``generate_cams_voc12.py``), for one
image with a Grad-CAM ``c`` on the h x w patch grid (min-max normalised, N = h*w) and
the head-averaged self-attention of the last ``n`` ViT layers (CLIP-ES: n = 8):

1. A = mean of the n attention maps restricted to patch tokens (N, N);
2. Sinkhorn-style normalisation: T = A / colsum(A); T = T / rowsum(T); then twice more
   (columns, rows) -- three column/row rounds in all;
3. symmetrisation T = (T + T^T) / 2, then one squaring T = T @ T;
4. the class-aware box mask: the Grad-CAM quantised to 8 bits is thresholded at
   ``int(0.4 * max)`` (strictly above), every contour's box (x0, y0, x1, y1) -- the WSOL
   protocol's boxes, x1 / y1 clipped to w-1 / h-1 -- is set to 1 on rows y0:y1 and
   columns x0:x1 (end-exclusive slices, as CLIP-ES writes them);
5. refined c' = (T * m^T) @ c, i.e. c'_i = sum_j T_ij m_j c_j, reshaped to (h, w).

The refined map is then min-max normalised by the caller (``scale_cam_image``).
"""
import numpy as np
import torch

from tedloc_mm.evaluation.box_protocol import boxes_at_threshold


def box_mask(cam: np.ndarray, threshold: float = 0.4) -> np.ndarray:
    """CLIP-ES's mask (h, w) float32 in {0, 1} from a normalised CAM (step 4 above)."""
    boxes = boxes_at_threshold(np.asarray(cam, np.float64), threshold, multi_contour=True)
    mask = np.zeros(cam.shape, np.float32)
    for x0, y0, x1, y1 in boxes:
        mask[y0:y1, x0:x1] = 1
    return mask


def affinity(attn: torch.Tensor, rounds: int = 3, power: int = 1) -> torch.Tensor:
    """Steps 2-3: (B, N, N) patch attention -> the symmetric transition matrix T."""
    t = attn.double()
    for _ in range(rounds):
        t = t / t.sum(dim=-2, keepdim=True)   # each column sums to 1
        t = t / t.sum(dim=-1, keepdim=True)   # each row sums to 1
    t = (t + t.transpose(-2, -1)) / 2
    for _ in range(power):
        t = t @ t
    return t


def caa_refine(cams: np.ndarray, attn: torch.Tensor, threshold: float = 0.4,
               rounds: int = 3, power: int = 1) -> np.ndarray:
    """CAA (steps 2-5) for a batch.

    Args:
        cams: (B, h, w) patch-grid CAMs in [0, 1].
        attn: (B, N, N) mean attention over the chosen layers, patch tokens only
            (N = h*w).
        threshold: the box-mask threshold (CLIP-ES: 0.4).

    Returns:
        (B, h, w) float32 refined maps, *not* normalised.
    """
    B, h, w = cams.shape
    if attn.shape != (B, h * w, h * w):
        raise ValueError(f'attention {tuple(attn.shape)} does not fit CAMs {cams.shape}')
    trans = affinity(attn, rounds, power)
    masks = torch.from_numpy(np.stack([box_mask(c, threshold) for c in cams])).reshape(B, 1, -1)
    c = torch.from_numpy(np.asarray(cams, np.float64)).reshape(B, -1, 1)
    refined = (trans * masks.to(trans)) @ c.to(trans)
    return refined.reshape(B, h, w).float().numpy()


def scale_cam(cam: np.ndarray) -> np.ndarray:
    """CLIP-ES's / pytorch_grad_cam's ``scale_cam_image`` without the resize:
    (c - min) / (max(c - min) + 1e-7), per map of a (B, h, w) batch."""
    c = cam - cam.reshape(len(cam), -1).min(1)[:, None, None]
    return (c / (c.reshape(len(c), -1).max(1)[:, None, None] + 1e-7)).astype(np.float32)
