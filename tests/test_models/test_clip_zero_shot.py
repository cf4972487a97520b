"""Zero-shot CLIP localizers (paper Tables 1 and 4): maps and scores against hand
computations on a random tiny CLIP, and tools/test.py on every synthetic configs/clip
config."""
import glob
import json
import math
import os.path as osp
import runpy
import sys

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmpretrain.structures import DataSample

import tedloc_mm  # noqa: F401  (the import hooks of tedloc_mm.compat, first)
from clip_reference import TINY, gradcam, open_clip_forward, text_embeddings
from tedloc_mm.registry import MODELS

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
NAMES = ['red bird', 'blue bird', 'green frog']
TEMPLATES = ['a photo of a {}.', 'a {} in the wild.']
CLIP = dict(model_name='ViT-B-16', checkpoint=None, random_init=True, seed=0, **TINY)


def build(type_, **kw):
    return MODELS.build(dict(type=type_, clip=CLIP, class_names=NAMES, templates=TEMPLATES,
                             **kw))


def samples(labels):
    return [DataSample(metainfo=dict(img_shape=(32, 32))).set_gt_label(y) for y in labels]


def hand_scores(model, tok, pooled):
    t = text_embeddings(model, tok, NAMES, TEMPLATES)
    return torch.softmax(model.logit_scale.exp() * F.normalize(pooled, dim=-1) @ t.t(), -1), t


def hand_last_block(model, x, mode, std=5.0):
    """x_L with the last block written out from SCLIP's / NACLIP's formulas, earlier
    blocks through open_clip's own modules; returns ln_post(x_L) @ proj (B, L, D)."""
    v = model.visual
    h = v._embeds(x)
    for blk in v.transformer.resblocks[:-1]:
        h = blk(h)
    blk = v.transformer.resblocks[-1]
    y = blk.ln_1(h)
    B, L, C = y.shape
    nh = blk.attn.num_heads
    q, k, val = (y @ blk.attn.in_proj_weight.t() + blk.attn.in_proj_bias).chunk(3, -1)
    q, k, val = (t.reshape(B, L, nh, C // nh).transpose(1, 2) for t in (q, k, val))
    s = 1 / math.sqrt(C // nh)
    if mode == 'sclip':
        w = (torch.softmax(s * q @ q.transpose(-1, -2), -1)
             + torch.softmax(s * k @ k.transpose(-1, -2), -1))
    else:
        side = int(round((L - 1)**0.5))
        omega = torch.zeros(L, L)
        for p in range(L - 1):
            for r in range(L - 1):
                d2 = (p // side - r // side)**2 + (p % side - r % side)**2
                omega[p + 1, r + 1] = math.exp(-d2 / (2 * std * std))
        w = torch.softmax(s * k @ k.transpose(-1, -2) + omega, -1)
    out = blk.attn.out_proj((w @ val).transpose(1, 2).reshape(B, L, C))
    if mode == 'sclip':
        h = h + out
        h = h + blk.mlp(blk.ln_2(h))
    else:
        h = out        # NACLIP's reduced block: no residual, no MLP
    return v.ln_post(h) @ v.proj


@pytest.mark.parametrize('attention', ['vanilla', 'sclip', 'naclip'])
def test_patch_text_maps_and_scores_match_hand_computation(attention):
    loc = build('CLIPPatchTextLocalizer', last_attention=attention).eval()
    model, tok = loc.clip, loc.tokenizer
    torch.manual_seed(2)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        if attention == 'vanilla':
            pooled, tokens = open_clip_forward(model, x)
            z = torch.cat([pooled[:, None], tokens @ model.visual.proj], 1)
        else:
            z = hand_last_block(model, x, attention)
        scores, t = hand_scores(model, tok, z[:, 0])
    top = scores.argmax(1)
    gt = [(int(k) + 1) % 3 for k in top]   # GT labels CLIP gets wrong: 'gt' and 'pred' differ
    out = loc.predict(x, samples(gt))
    for i, y in enumerate(gt):
        cos = F.normalize(z[i, 1:], dim=-1) @ t[y]                      # (16,)
        want = F.interpolate(cos.reshape(1, 1, 4, 4), size=(32, 32), mode='bilinear',
                             align_corners=False)[0, 0]
        torch.testing.assert_close(out[i].pred_map, want, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(out[i].pred_score, scores[i], atol=1e-5, rtol=1e-4)
    # 'pred': the map of the top-scored class
    pred = build('CLIPPatchTextLocalizer', last_attention=attention, map_class='pred').eval()
    p = pred.predict(x, samples(gt))
    for i in range(2):
        cos = F.normalize(z[i, 1:], dim=-1) @ t[top[i]]
        want = F.interpolate(cos.reshape(1, 1, 4, 4), size=(32, 32), mode='bilinear',
                             align_corners=False)[0, 0]
        torch.testing.assert_close(p[i].pred_map, want, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize('cam_class', ['gt', 'pred'])
def test_clip_es_localizer_map_and_scores(cam_class):
    # refine=False: CAA on a random tiny CLIP's near-uniform attention makes the maps
    # of different classes almost equal; the refinement is tested in test_clip_es_cam.py
    bg = ['sky', 'tree']
    loc = build('CLIPESLocalizer', cam_class=cam_class,
                cam=dict(background_words=bg, refine=False)).eval()
    model, tok = loc.clip, loc.tokenizer
    torch.manual_seed(4)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        scores, _ = hand_scores(model, tok, open_clip_forward(model, x)[0])
    top = scores.argmax(1).tolist()
    gt = [(k + 1) % 3 for k in top]   # GT labels CLIP gets wrong: 'gt' and 'pred' differ
    out = loc.predict(x, samples(gt))
    cam_text = text_embeddings(model, tok, NAMES + bg, ['a clean origami {}.'])
    for i in range(2):
        torch.testing.assert_close(out[i].pred_score, scores[i], atol=1e-5, rtol=1e-4)
        maps = {y: cv2.resize(gradcam(model, x[i:i + 1], cam_text, y, [3, 4]).astype(np.float32),
                              (32, 32)) for y in (gt[i], top[i])}
        assert np.abs(maps[gt[i]] - maps[top[i]]).max() > 1e-2   # the class matters
        want = maps[gt[i] if cam_class == 'gt' else top[i]]
        np.testing.assert_allclose(out[i].pred_map.numpy(), want, atol=1e-4)


def test_zero_shot_models_refuse_training_and_bad_options():
    loc = build('CLIPPatchTextLocalizer')
    with pytest.raises(RuntimeError, match='nothing to train'):
        loc(torch.zeros(1, 3, 32, 32), samples([0]), mode='loss')
    with pytest.raises(ValueError, match='last_attention'):
        build('CLIPPatchTextLocalizer', last_attention='maskclip')
    with pytest.raises(ValueError, match='cam_class'):
        build('CLIPESLocalizer', cam_class='top5')
    with pytest.raises(FileNotFoundError, match='built-in list'):
        MODELS.build(dict(type='CLIPPatchTextLocalizer', clip=CLIP, class_names='no-such-file'))
    with pytest.raises(ValueError, match=r'label\(s\) \[7\]'):
        loc.predict(torch.zeros(1, 3, 32, 32), samples([7]))


WSOL_METRICS = {f'wsol/{k}' for k in (
    'MaxBoxAcc', 'MaxBoxAccV2', 'MaxBoxAccV2@0.3', 'MaxBoxAccV2@0.5', 'MaxBoxAccV2@0.7',
    'best_thr', 'Top1Loc', 'Top5Loc', 'Top1Loc@best_thr', 'Top5Loc@best_thr', 'Top1Cls',
    'Top5Cls', 'PxAP')}


@pytest.fixture(scope='module')
def synthetic(tmp_path_factory):
    from tedloc_mm.embedded_benchmarks.gliders import generate_synthetic_wsol
    root = str(tmp_path_factory.mktemp('synthetic'))
    generate_synthetic_wsol(root, seed=3, num_classes=3, num_train=1, num_val=1, num_test=2)
    return root


SYNTHETIC_CONFIGS = sorted(glob.glob(osp.join(ROOT, 'configs/clip/*_synthetic.py')))


def test_every_paper_row_has_a_synthetic_config():
    rows = {osp.basename(p).split('_')[0] for p in glob.glob(osp.join(ROOT, 'configs/clip/*.py'))}
    synthetic = {osp.basename(p).split('_')[0] for p in SYNTHETIC_CONFIGS}
    assert rows == synthetic == {'clip-es', 'clip', 'sclip', 'naclip'}
    assert len(SYNTHETIC_CONFIGS) == 5   # CLIP-ES GT / Pred, vanilla, SCLIP, NACLIP


def direct_metrics(config, data_root):
    """The config's model run on the test split without the Runner: images read with
    OpenCV and resized bilinearly to 96 px, the model's own data preprocessor and
    predict, GT boxes and masks read from the metadata and mask files, and the
    protocol's numbers from ``evaluate_maps``."""
    from mmengine.config import Config

    from tedloc_mm.fileio.wsol_metadata import read_wsol_split
    from tedloc_mm.evaluation import evaluate_maps
    cfg = Config.fromfile(config)
    model = MODELS.build(cfg.model).eval()
    infos = read_wsol_split(osp.join(data_root, 'metadata', 'test'))
    images, samples, boxes, labels, masks, ignores = [], [], [], [], [], []
    for info in infos:
        img = cv2.imread(osp.join(data_root, info['img_id']))
        h, w = img.shape[:2]
        img = cv2.resize(img, (96, 96), interpolation=cv2.INTER_LINEAR)
        images.append(torch.from_numpy(img).permute(2, 0, 1).contiguous())
        samples.append(DataSample(metainfo=dict(img_shape=(96, 96)))
                       .set_gt_label(info['gt_label']))
        labels.append(info['gt_label'])
        b = info['ori_gt_bboxes'] * np.array([96 / w, 96 / h, 96 / w, 96 / h])
        boxes.append(np.trunc(b).astype(int))
        fg = np.any([cv2.imread(osp.join(data_root, m), cv2.IMREAD_GRAYSCALE) > 0
                     for m in info['mask_paths']], 0)
        masks.append(fg)
        ignores.append(None if not info.get('ignore_path') else
                       (cv2.imread(osp.join(data_root, info['ignore_path']),
                                   cv2.IMREAD_GRAYSCALE) > 0) & ~fg)
    # one batch, as the config's test loader (batch 64) makes of these 6 images
    batch = model.data_preprocessor(dict(inputs=images, data_samples=samples), False)
    with torch.no_grad():
        out = model.predict(batch['inputs'], batch['data_samples'])
    maps = [s.pred_map.numpy() for s in out]
    scores = [s.pred_score.numpy() for s in out]
    return evaluate_maps(maps, boxes, labels=labels, scores=scores, gt_masks=masks,
                         ignore_masks=ignores)


@pytest.mark.parametrize('config', SYNTHETIC_CONFIGS, ids=osp.basename)
def test_tools_test_runs_zero_shot_config(config, synthetic, tmp_path, monkeypatch, capfd):
    out = str(tmp_path / 'metrics.json')
    monkeypatch.setattr(sys, 'argv', [
        'tools/test.py', config, 'none', '--work-dir', str(tmp_path), '--out', out,
        '--cfg-options', f'test_dataloader.dataset.data_root={synthetic}'])
    with pytest.raises(SystemExit) as done:  # the tool's exit status: 0 on success
        runpy.run_path(osp.join(ROOT, 'tools/test.py'), run_name='__main__')
    assert done.value.code == 0
    metrics = json.load(open(out))
    assert set(metrics) == WSOL_METRICS
    printed = capfd.readouterr()
    for name in WSOL_METRICS:
        assert name in printed.out + printed.err
    # the numbers are those of the config's model on the test split's images and GT
    assert metrics == direct_metrics(config, synthetic)
