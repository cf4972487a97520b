"""PatchMILHead: TeD-Loc's FG/BG patch classifier g, text anchors T and losses (Eq. 1-5)."""
import math
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule

from tedloc_mm.registry import MODELS
from tedloc_mm.structures import PSEUDO_BG, PSEUDO_FG, PSEUDO_IGNORE
from tedloc_mm.fileio.anchor_file import BUILD_HINT, load_anchor_file
from ..utils.orthogonalize import orthogonalize_anchors

MAP_TYPES = ('fg', 'anchor')
#: how the anchor map scores pixel p for class c (``anchor_map_norm``)
ANCHOR_MAP_NORMS = ('dot', 'cosine', 'softmax', 'sigmoid')
#: what the BG-sampled pixels are taught about the anchors (``kd_bg``)
KD_BG_TARGETS = ('none', 'uniform', 'negative')
LOSS_REDUCTIONS = ('mean', 'sum')


@MODELS.register_module()
class PatchMILHead(BaseModule):
    """Heads of TeD-Loc on pixel embeddings z (B, D, h', w').

    Notation (paper §3): z_p the embedding of output pixel p; T = [t_1..t_K] the
    anchors (a frozen (K, D) buffer ``anchors``); g(z_p) = sigmoid(w . z_p + b) the
    FG probability (a 1x1 conv, or a small MLP with ``g_hidden_channels``).

    * f(v, t_k) = s * <v, t_k> with the fixed scale ``logit_scale`` = s. By default
      v is **not** L2-normalised (the paper's plain dot product; the magnitude of z_p
      carries confidence). ``normalize_embeddings=True`` L2-normalises v first
      (cosine similarity, CLIP-style; then use s ~ 10-100).
    * (1) loss_kd   = CE(f(z_p, .), y) over FG-sampled pixels (pseudo_label_map == 1).
    * (2) loss_patch = BCE(g(z_p), y'_p) over all sampled pixels (map != -1).
    * (3) h = sum_p a_p z_p, a_p = g(z_p) / sum_j g(z_j), computed as
      softmax_p(log g(z_p)) = softmax_p(logsigmoid(logit_p)): the same weights, but
      never 0/0: when every g -> 0 (even below float32's range) the weights stay a
      proper average (they tend to softmax of the logits), so h stays finite.
    * (4) loss_img  = CE(f(h, .), y) per image.
    * (5) L = lambda_kd * loss_kd + lambda_patch * loss_patch + lambda_img * loss_img
      (MMEngine sums the returned ``loss_*`` terms, which are already weighted).
    * Not in the paper, off by default (``kd_bg='none'``): L_KD only ever sees FG
      pixels, so nothing says what <z_p, t_y> should be on the background, and the
      anchor map (Table 4) inherits whatever the BG embeddings drift to. ``kd_bg``
      adds ``loss_kd_bg`` = ``lambda_kd_bg`` x a term over the BG-sampled pixels:
      ``'uniform'``: KL(uniform || softmax f(z_p, .)) (a BG pixel belongs to no class;
      0 at the optimum); ``'negative'``: BCE of sigmoid f(z_p, t_y) against 0 for the
      image's class y (a BG pixel is not y; softplus(f)). Reduced like loss_kd.

    Sums or means (``loss_reduction``): the paper writes sums over the sampled pixels
    (Eq. 1-2). ``'mean'`` (default): loss_kd is the mean over all FG-sampled pixels of
    the batch, loss_patch over all sampled pixels of the batch -- as the authors' code
    does (TrCAM ``dlib/losses/tcam.py`` line 52, the pixel loss
    ``nn.CrossEntropyLoss(reduction="mean", ignore_index=...)`` over the batch's
    seeded pixels). With sums the gradient scale grows with the sampler's n+/n- and the
    batch size, so the lambdas and the learning rate would have to be retuned whenever
    the sampler is; with means they stay comparable. The batch mean weights each image
    by its number of samples: it equals the mean of per-image means only when every
    image has as many (an image with fewer candidates than the sampler's count, e.g. a
    small CAM's top region, weighs less), and an image without FG samples adds nothing
    instead of a 0/0. ``'sum'``: Eq. 1-2 as written, the sum over each image's sampled
    pixels, averaged over the batch's images (as loss_img is). loss_img is a mean over
    images either way. An empty set gives a zero loss that keeps the graph.

    Prediction: ``pred_score`` = softmax f(h, .); ``pred_map`` = g(z) (``map_type=
    'fg'``, the paper's map M) or the anchor map of class c (``'anchor'``, the paper's
    Table 4 second map) for c the predicted class (``anchor_map_label='pred'``) or
    the ground truth (``'gt'``, GT-known), bilinearly resized to ``img_shape``. The
    anchor map (``anchor_map_norm``): ``'dot'`` <z_p, t_c> (the paper's, Table 4:
    "we perform a dot product across all patch embeddings"; without s), ``'cosine'``
    <z_p / |z_p|, t_c> (direction only: a pixel's embedding norm no longer ranks it),
    ``'softmax'`` softmax_k f(z_p, t_k) at c (the per-pixel class probability that
    L_KD trains), or ``'sigmoid'`` sigmoid(f(z_p, t_c)) (the probability that
    ``kd_bg='negative'`` trains: squashed on an absolute scale shared by all images,
    as g's map is). The metric min-max normalises each map, so an affine rescaling
    changes nothing; a sigmoid before that normalisation does: it moves each image's
    levels by where its values lie on the shared scale. No two of the four are
    related by a per-image affine map.

    Args:
        num_classes: K.
        in_channels: D, the decoder's output width; must equal the anchor width d.
        anchor_file: anchor file path (see :mod:`tedloc_mm.fileio.anchor_file`).
        anchor_embeddings: (K, d) embeddings given directly instead (tests).
        orthogonalization: 'qr' (paper), 'svd' or 'none'; see
            :mod:`tedloc_mm.models.utils.orthogonalize`.
        logit_scale: s.
        normalize_embeddings: L2-normalise v in f (see above).
        lambda_kd, lambda_patch, lambda_img: lambda_1..3 of Eq. 5.
        map_type, anchor_map_label, anchor_map_norm: the predicted map, see above.
        kd_bg, lambda_kd_bg: the optional BG term of L_KD, see above.
        g_hidden_channels: None for a linear g, else the hidden width of a 2-layer g.
        loss_reduction: ``'mean'`` or ``'sum'`` over the sampled pixels, see above.
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 anchor_file: Optional[str] = None,
                 anchor_embeddings: Optional[torch.Tensor] = None,
                 orthogonalization: str = 'qr',
                 logit_scale: float = 1.0,
                 normalize_embeddings: bool = False,
                 lambda_kd: float = 1.0,
                 lambda_patch: float = 1.0,
                 lambda_img: float = 1.0,
                 map_type: str = 'fg',
                 anchor_map_label: str = 'pred',
                 g_hidden_channels: Optional[int] = None,
                 loss_reduction: str = 'mean',
                 anchor_map_norm: str = 'dot',
                 kd_bg: str = 'none',
                 lambda_kd_bg: float = 1.0,
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        if (anchor_file is None) == (anchor_embeddings is None):
            raise ValueError('PatchMILHead needs exactly one of anchor_file / '
                             f'anchor_embeddings. {BUILD_HINT}')
        if anchor_file is not None:
            embeddings = load_anchor_file(anchor_file, num_classes)['embeddings']
        else:
            embeddings = torch.as_tensor(anchor_embeddings, dtype=torch.float32)
            if embeddings.dim() != 2 or embeddings.shape[0] != num_classes:
                raise ValueError(f'anchor_embeddings must be (K={num_classes}, d), got '
                                 f'{tuple(embeddings.shape)}')
        if embeddings.shape[1] != in_channels:
            raise ValueError(f'the anchors have d={embeddings.shape[1]} dimensions but the '
                             f'head gets in_channels={in_channels}: set the decoder\'s '
                             f'out_channels and the head\'s in_channels to d')
        if map_type not in MAP_TYPES:
            raise ValueError(f'map_type must be one of {MAP_TYPES}, got {map_type!r}')
        if anchor_map_label not in ('pred', 'gt'):
            raise ValueError(f"anchor_map_label must be 'pred' or 'gt', got "
                             f'{anchor_map_label!r}')
        if anchor_map_norm not in ANCHOR_MAP_NORMS:
            raise ValueError(f'anchor_map_norm must be one of {ANCHOR_MAP_NORMS}, got '
                             f'{anchor_map_norm!r}')
        if kd_bg not in KD_BG_TARGETS:
            raise ValueError(f'kd_bg must be one of {KD_BG_TARGETS}, got {kd_bg!r}')
        if loss_reduction not in LOSS_REDUCTIONS:
            raise ValueError(f'loss_reduction must be one of {LOSS_REDUCTIONS}, got '
                             f'{loss_reduction!r}')
        self.loss_reduction = loss_reduction
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.orthogonalization = orthogonalization
        self.register_buffer('anchors', orthogonalize_anchors(embeddings, orthogonalization))
        self.logit_scale = float(logit_scale)
        self.normalize_embeddings = normalize_embeddings
        self.lambda_kd, self.lambda_patch, self.lambda_img = lambda_kd, lambda_patch, lambda_img
        self.map_type = map_type
        self.anchor_map_label = anchor_map_label
        self.anchor_map_norm = anchor_map_norm
        self.kd_bg, self.lambda_kd_bg = kd_bg, float(lambda_kd_bg)
        if g_hidden_channels is None:
            self.fg_classifier = nn.Conv2d(in_channels, 1, 1)
        else:
            self.fg_classifier = nn.Sequential(
                nn.Conv2d(in_channels, g_hidden_channels, 1), nn.GELU(),
                nn.Conv2d(g_hidden_channels, 1, 1))

    # ------------------------------------------------------------------ pieces
    def fg_logits(self, z: torch.Tensor) -> torch.Tensor:
        """(B, D, h, w) -> (B, h, w) logits of g (g = sigmoid of these)."""
        return self.fg_classifier(z)[:, 0]

    def class_logits(self, v: torch.Tensor) -> torch.Tensor:
        """f(v, t_k) for all k: (..., D) -> (..., K)."""
        if self.normalize_embeddings:
            v = F.normalize(v, dim=-1)
        return self.logit_scale * (v @ self.anchors.T)

    @staticmethod
    def aggregate(z: torch.Tensor, fg_logits: torch.Tensor) -> torch.Tensor:
        """h = sum_p a_p z_p with a_p = g_p / sum_j g_j (Eq. 3): (B, D)."""
        weights = torch.softmax(F.logsigmoid(fg_logits.flatten(1)), dim=1)  # (B, P)
        return torch.einsum('bp,bdp->bd', weights, z.flatten(2))

    def forward(self, z: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """z (B, D, h, w) -> (image class logits f(h, .) (B, K), g logits (B, h, w))."""
        fg = self.fg_logits(z)
        return self.class_logits(self.aggregate(z, fg)), fg

    # ------------------------------------------------------------------ training
    def loss(self, z: torch.Tensor, data_samples: Sequence,
             input_hw: Optional[Tuple[int, int]] = None) -> dict:
        """The three weighted losses of Eq. 5.

        Args:
            z: pixel embeddings (B, D, h, w) on the decoder's grid.
            data_samples: with ``gt_label`` and ``pseudo_label_map`` (on the sampler's
                grid, see :meth:`pseudo_label_points`).
            input_hw: (H, W) of the batch input that z was computed from (padding
                included). Default: each sample's ``img_shape``.
        """
        labels = torch.cat([ds.gt_label.view(-1)[:1] for ds in data_samples]).to(z.device)
        b, r, c, y = self.pseudo_label_points(z, data_samples, input_hw)
        img_logits, fg = self(z)

        is_fg = y == PSEUDO_FG
        if is_fg.any():
            z_fg = z.permute(0, 2, 3, 1)[b[is_fg], r[is_fg], c[is_fg]]  # (N+, D)
            loss_kd = F.cross_entropy(self.class_logits(z_fg), labels[b[is_fg]],
                                      reduction=self.loss_reduction)
        else:
            loss_kd = z.sum() * 0.
        if y.numel():
            loss_patch = F.binary_cross_entropy_with_logits(fg[b, r, c], is_fg.to(fg.dtype),
                                                            reduction=self.loss_reduction)
        else:
            loss_patch = fg.sum() * 0.
        loss_img = F.cross_entropy(img_logits, labels)
        losses = dict(loss_kd=loss_kd, loss_patch=loss_patch)
        if self.kd_bg != 'none':
            losses['loss_kd_bg'] = self._kd_bg_loss(z, b, r, c, y == PSEUDO_BG, labels)
        if self.loss_reduction == 'sum':  # Eq. 1-2 per image, averaged over the images
            losses = {k: v / len(labels) for k, v in losses.items()}
        out = dict(loss_kd=self.lambda_kd * losses['loss_kd'],
                   loss_patch=self.lambda_patch * losses['loss_patch'],
                   loss_img=self.lambda_img * loss_img)
        if 'loss_kd_bg' in losses:
            out['loss_kd_bg'] = self.lambda_kd_bg * losses['loss_kd_bg']
        return out

    def _kd_bg_loss(self, z, b, r, c, is_bg, labels) -> torch.Tensor:
        """The BG term of ``kd_bg`` over the BG-sampled pixels, summed or averaged
        (``loss_reduction``) like loss_kd; a batch without BG samples gives 0."""
        if not is_bg.any():
            return z.sum() * 0.
        logits = self.class_logits(z.permute(0, 2, 3, 1)[b[is_bg], r[is_bg], c[is_bg]])
        if self.kd_bg == 'uniform':  # KL(u || p) = -mean_k log p_k - log K
            per_pixel = -F.log_softmax(logits, dim=1).mean(dim=1) - math.log(self.num_classes)
        else:  # 'negative': -log(1 - sigmoid(f(z_p, t_y)))
            per_pixel = F.softplus(logits.gather(1, labels[b[is_bg]][:, None])[:, 0])
        return per_pixel.sum() if self.loss_reduction == 'sum' else per_pixel.mean()

    def pseudo_label_points(self, z: torch.Tensor, data_samples: Sequence,
                            input_hw: Optional[Tuple[int, int]] = None):
        """The sampled pixels of every image on the decoder's grid.

        A sample's ``pseudo_label_map`` (gh, gw) lies on the sampler's grid over its
        input image (H, W) = ``img_shape``: cell (i, j) is the input pixel at
        y = (i + 1/2) H / gh, x = (j + 1/2) W / gw. That pixel lies in decoder cell
        r = floor(y h / Hb), c = floor(x w / Wb) of z (B, D, h, w), computed from the
        batch input (Hb, Wb) (``input_hw``; the sample's own size by default). Exact
        integer arithmetic: when the grids are equal, (r, c) = (i, j). Several sampled
        pixels may fall into one decoder cell (a finer sampling grid): each keeps its
        own loss term, as each does at the input resolution.

        Returns:
            (b, r, c, label): LongTensors (N,) of the N sampled pixels of the batch, in
            raster order of the sampler's grids (image by image), label 1 FG / 0 BG.
        """
        h, w = z.shape[-2:]
        bs, rs, cs, ys = [], [], [], []
        for k, ds in enumerate(data_samples):
            img_id = ds.metainfo.get('img_id', '?')
            if 'pseudo_label_map' not in ds:
                raise KeyError(f'data sample {img_id!r} has no pseudo_label_map: the '
                               'training pipeline needs PseudoLabelSampler before '
                               'PackWSOLInputs')
            m = torch.as_tensor(ds.pseudo_label_map).to(z.device).long()
            if m.dim() != 2:
                raise ValueError(f'pseudo_label_map of {img_id!r} must be 2-D (h, w), '
                                 f'got shape {tuple(m.shape)}')
            bad = ~((m == PSEUDO_FG) | (m == PSEUDO_BG) | (m == PSEUDO_IGNORE))
            if bad.any():
                raise ValueError(f'pseudo_label_map of {img_id!r}: values must be 1, 0 or '
                                 f'-1; found {m[bad].unique().tolist()}')
            gh, gw = m.shape
            img_hw = tuple(ds.metainfo.get('img_shape', input_hw or (gh, gw)))[:2]
            in_hw = tuple(input_hw) if input_hw is not None else img_hw
            i, j = torch.nonzero(m != PSEUDO_IGNORE, as_tuple=True)
            # floor((i + 1/2) * H / gh * h / Hb) in integers
            r = torch.div((2 * i + 1) * img_hw[0] * h, 2 * gh * in_hw[0], rounding_mode='floor')
            c = torch.div((2 * j + 1) * img_hw[1] * w, 2 * gw * in_hw[1], rounding_mode='floor')
            bs.append(torch.full_like(i, k))
            rs.append(r.clamp_(max=h - 1))
            cs.append(c.clamp_(max=w - 1))
            ys.append(m[i, j])
        return torch.cat(bs), torch.cat(rs), torch.cat(cs), torch.cat(ys)

    # ------------------------------------------------------------------ inference
    def anchor_map(self, z: torch.Tensor, cls: torch.Tensor) -> torch.Tensor:
        """The anchor map of class cls[i] on image i: z (B, D, h, w) -> (B, h, w),
        scored as ``anchor_map_norm`` says (see the class docstring)."""
        if self.anchor_map_norm == 'softmax':
            probs = torch.softmax(self.class_logits(z.permute(0, 2, 3, 1)), dim=-1)
            return probs.gather(-1, cls.view(-1, 1, 1, 1).expand(*probs.shape[:3], 1))[..., 0]
        if self.anchor_map_norm == 'sigmoid':
            return torch.sigmoid(self.logit_scale *
                                 torch.einsum('bdhw,bd->bhw', z, self.anchors[cls]))
        if self.anchor_map_norm == 'cosine':
            z = F.normalize(z, dim=1)
        return torch.einsum('bdhw,bd->bhw', z, self.anchors[cls])

    def predict(self, z: torch.Tensor, data_samples: List) -> List:
        img_logits, fg = self(z)
        scores = torch.softmax(img_logits, dim=1)
        pred_labels = scores.argmax(dim=1)
        if self.map_type == 'fg':
            maps = torch.sigmoid(fg)
        else:
            if self.anchor_map_label == 'gt':
                cls = torch.cat([ds.gt_label.view(-1)[:1] for ds in data_samples]).to(z.device)
            else:
                cls = pred_labels
            maps = self.anchor_map(z, cls)
        for i, ds in enumerate(data_samples):
            img_hw = tuple(ds.metainfo['img_shape'][:2])
            m = F.interpolate(maps[i][None, None], size=img_hw, mode='bilinear',
                              align_corners=False)[0, 0]
            ds.set_pred_score(scores[i]).set_pred_label(pred_labels[i:i + 1])
            ds.pred_map = m
        return data_samples
