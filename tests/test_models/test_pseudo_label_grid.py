"""Pseudo-labels on the sampler's grid, mapped by the head onto the decoder's grid.

* Bit for bit as before: with the sampling grid equal to the decoder's, the sampler
  draws the same cells as the former sampler (which sampled on the decoder's grid,
  ``out_stride`` filled in from ``model.neck.out_stride`` by our tools), and the head's
  losses are those of the former head: both former code paths are copied below as the
  independent reference.
* Another grid works: each sampled cell's centre (input pixels) lands in the decoder
  cell that contains it, computed here in floating point from the coordinates.
"""
import math

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmpretrain.structures import DataSample
from skimage.filters import threshold_otsu

from tedloc_mm.datasets import PseudoLabelSampler
from tedloc_mm.models.heads import PatchMILHead


# ---------------------------------------------------------------- the former code paths
def _former_count(n, size):
    if isinstance(n, float):
        return min(size, max(1, math.ceil(n * size))) if size else 0
    return min(int(n), size)


def former_sampler(cam, img_hw, out_stride, n_fg=0.5, n_bg=0.5, k=16):
    """The sampler before the grid change: CAM area-resized to (H // s, W // s)."""
    gh, gw = img_hw[0] // out_stride, img_hw[1] // out_stride
    cam = np.asarray(cam, np.float32)
    if cam.shape != (gh, gw):
        cam = cv2.resize(cam, (gw, gh), interpolation=cv2.INTER_AREA)
    flat = cam.ravel()
    lo, hi = float(flat.min()), float(flat.max())
    label = np.full(gh * gw, -1, np.int64)
    if hi - lo <= 1e-6 * max(1.0, abs(hi)):
        return label.reshape(gh, gw)
    q = np.rint((flat - lo) * (255.0 / (hi - lo))).astype(np.uint8)
    region = np.zeros(flat.shape, bool) if q.min() == q.max() else q > threshold_otsu(q)
    fg_idx, bg_idx = np.flatnonzero(region), np.flatnonzero(~region)
    nf, nb = _former_count(n_fg, fg_idx.size), _former_count(n_bg, bg_idx.size)
    fg = fg_idx[np.lexsort((np.random.random(fg_idx.size), -flat[fg_idx]))[:nf]]
    bg = bg_idx[np.lexsort((np.random.random(bg_idx.size), flat[bg_idx]))[:nb]]
    kk = _former_count(k, min(fg.size, bg.size))
    if kk > 0:
        label[np.random.choice(fg, kk, replace=False)] = 1
        label[np.random.choice(bg, kk, replace=False)] = 0
    return label.reshape(gh, gw)


def former_losses(head, z, data_samples):
    """The head's losses before the change: the maps stacked on the decoder's grid."""
    labels = torch.cat([ds.gt_label.view(-1)[:1] for ds in data_samples])
    plm = torch.stack([torch.as_tensor(ds.pseudo_label_map) for ds in data_samples]).long()
    assert plm.shape[-2:] == z.shape[-2:]  # the former head required it
    img_logits, fg = head(z)
    fg_mask = plm == 1
    z_fg = z.permute(0, 2, 3, 1)[fg_mask]
    y_fg = labels[:, None, None].expand_as(plm)[fg_mask]
    loss_kd = F.cross_entropy(head.class_logits(z_fg), y_fg)
    sampled = plm != -1
    loss_patch = F.binary_cross_entropy_with_logits(fg[sampled],
                                                    (plm[sampled] == 1).to(fg.dtype))
    loss_img = F.cross_entropy(img_logits, labels)
    return dict(loss_kd=head.lambda_kd * loss_kd, loss_patch=head.lambda_patch * loss_patch,
                loss_img=head.lambda_img * loss_img)


# ---------------------------------------------------------------- helpers
def blob_cam(hw, seed):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:hw[0], :hw[1]]
    cy, cx = rng.uniform(0.3, 0.7, 2) * hw
    cam = np.exp(-((yy - cy)**2 + (xx - cx)**2) / (2 * (0.15 * min(hw))**2))
    cam = cam + 0.05 * rng.random(hw)
    return np.round(cam / cam.max() * 255).astype(np.float32) / 255  # uint8 levels, ties


def sample_map(sampler, cam, seed):
    np.random.seed(seed)
    img = np.zeros(cam.shape + (3,), np.uint8)
    return sampler(dict(img=img, cam=cam, img_id='x'))['pseudo_label_map']


def head(d=6, k=3):
    torch.manual_seed(0)
    return PatchMILHead(num_classes=k, in_channels=d, anchor_embeddings=torch.randn(k, d))


def samples(maps, img_hw):
    out = []
    for i, m in enumerate(maps):
        ds = DataSample(metainfo=dict(img_shape=img_hw, img_id=f'im{i}')).set_gt_label(i % 3)
        ds.pseudo_label_map = torch.as_tensor(m)
        out.append(ds)
    return out


# ---------------------------------------------------------------- bit for bit
@pytest.mark.parametrize('img_hw,stride,counts', [
    ((224, 224), 4, (0.5, 0.5, 16)),   # the paper configs
    ((224, 224), 8, (0.5, 0.5, 32)),   # the demo
    ((96, 64), 8, (5, 0.3, 4)),
    ((100, 75), 8, (0.5, 0.5, 0.5))])  # not multiples of the stride
def test_same_cells_as_the_former_sampler(img_hw, stride, counts):
    n_fg, n_bg, k = counts
    sampler = PseudoLabelSampler(grid_stride=stride, num_fg_candidates=n_fg,
                                 num_bg_candidates=n_bg, num_samples=k)
    for seed in range(6):
        cam = blob_cam(img_hw, seed)
        np.random.seed(100 + seed)
        ref = former_sampler(cam, img_hw, stride, n_fg, n_bg, k)
        new = sample_map(sampler, cam, 100 + seed)
        assert (new >= 0).any()
        np.testing.assert_array_equal(new, ref)


def test_same_losses_as_the_former_head_when_the_grids_are_equal():
    img_hw, stride = (64, 48), 4
    sampler = PseudoLabelSampler(grid_stride=stride, num_samples=6)
    maps = [sample_map(sampler, blob_cam(img_hw, s), s) for s in range(3)]
    h = head()
    z = torch.randn(3, 6, img_hw[0] // stride, img_hw[1] // stride,
                    generator=torch.Generator().manual_seed(3))
    ref = former_losses(h, z, samples(maps, img_hw))
    new = h.loss(z, samples(maps, img_hw), input_hw=img_hw)
    for key in ref:
        assert torch.equal(new[key], ref[key]), key  # bit for bit


# ---------------------------------------------------------------- other grids
def cells_by_coordinates(m, img_hw, z_hw, input_hw):
    """Decoder cells of the sampled cells' centres, in floating point."""
    gh, gw = m.shape
    i, j = np.nonzero(m >= 0)
    y, x = (i + 0.5) * img_hw[0] / gh, (j + 0.5) * img_hw[1] / gw
    return (np.floor(y / (input_hw[0] / z_hw[0])).astype(int),
            np.floor(x / (input_hw[1] / z_hw[1])).astype(int), m[i, j])


@pytest.mark.parametrize('sample_stride,decoder_stride,img_hw,input_hw', [
    (1, 4, (32, 24), (32, 24)),   # full resolution onto a stride-4 decoder
    (2, 4, (32, 24), (32, 24)),
    (8, 4, (32, 24), (32, 24)),   # coarser than the decoder
    (4, 4, (28, 20), (32, 24)),   # a padded batch: the image covers part of the input
    (3, 4, (30, 21), (32, 24))])
def test_other_sampling_grids_land_on_the_decoder_cell_of_each_pixel(
        sample_stride, decoder_stride, img_hw, input_hw):
    sampler = PseudoLabelSampler(grid_stride=sample_stride, num_samples=5)
    m = sample_map(sampler, blob_cam(img_hw, 1), 1)
    h = head()
    z_hw = (input_hw[0] // decoder_stride, input_hw[1] // decoder_stride)
    z = torch.randn(1, 6, *z_hw, generator=torch.Generator().manual_seed(0))
    ds = samples([m], img_hw)
    b, r, c, y = h.pseudo_label_points(z, ds, input_hw)
    r_ref, c_ref, y_ref = cells_by_coordinates(m, img_hw, z_hw, input_hw)
    assert len(y_ref) >= 4 and set(y_ref.tolist()) == {0, 1}
    np.testing.assert_array_equal(r.numpy(), r_ref)
    np.testing.assert_array_equal(c.numpy(), c_ref)
    np.testing.assert_array_equal(y.numpy(), y_ref)
    # the losses use one term per sampled pixel, at its decoder cell
    losses = h.loss(z, ds, input_hw=input_hw)
    _, g = h(z)
    zp = z[0].permute(1, 2, 0)[r_ref, c_ref]
    fg = y_ref == 1
    ref_kd = F.cross_entropy(h.class_logits(zp[fg]), torch.zeros(int(fg.sum()), dtype=torch.long))
    ref_patch = F.binary_cross_entropy_with_logits(
        g[0][r_ref, c_ref], torch.as_tensor(fg, dtype=torch.float32))
    torch.testing.assert_close(losses['loss_kd'], ref_kd)
    torch.testing.assert_close(losses['loss_patch'], ref_patch)


def test_model_trains_from_a_sampling_grid_other_than_the_decoders():
    """The tiny TeD-Loc (decoder stride 4) takes stride-2 pseudo-labels: finite
    losses with gradients to the decoder, no size error."""
    from tiny_tedloc import tiny_model
    model = tiny_model()
    size = 64
    sampler = PseudoLabelSampler(grid_stride=2, num_samples=8)
    data_samples = samples([sample_map(sampler, blob_cam((size, size), s), s)
                            for s in range(2)], (size, size))
    imgs = [torch.randint(0, 256, (3, size, size), generator=torch.Generator().manual_seed(i))
            .to(torch.uint8) for i in range(2)]
    data = model.data_preprocessor(dict(inputs=imgs, data_samples=data_samples), True)
    losses = model(**data, mode='loss')
    total = sum(losses.values())
    assert torch.isfinite(total) and losses['loss_patch'] > 0
    total.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.neck.parameters())


#: configs that sample at full resolution on purpose (the authors' sampling, TrCAM)
FULL_RESOLUTION_SAMPLING = ('tedloc_eva-l_authors-sampling_cub.py',
                            'tedloc_efficientnet-lite0_authors-sampling_stamps.py')


def test_every_tedloc_config_samples_on_its_decoders_grid():
    """With the config alone (no tool fills anything in), each TeD-Loc config's
    sampler grid is its decoder's, so it trains on the paper's cells."""
    import glob
    import os.path as osp

    from mmengine.config import Config
    repo = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    checked = 0
    for path in sorted(glob.glob(osp.join(repo, 'tedloc_mm', 'configs', '**', '*.py'),
                                 recursive=True)):
        if '_base_' in path:
            continue
        cfg = Config.fromfile(path)
        if (cfg.get('model') or {}).get('type') != 'tedloc.TeDLoc':
            continue
        steps = [t for t in cfg.train_dataloader.dataset.pipeline
                 if t.type == 'PseudoLabelSampler']
        assert len(steps) == 1, path
        if osp.basename(path) in FULL_RESOLUTION_SAMPLING:  # the authors' sampling
            assert steps[0].grid_stride == 1, path
            continue
        assert steps[0].grid_stride == cfg.model.neck.out_stride, path
        checked += 1
    assert checked >= 20
