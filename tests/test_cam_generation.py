"""CAM generation: CLIP-ES Grad-CAM (tiny random open_clip), classifier Grad-CAM (tiny
random MMPretrain ViT), and tools/generate_cams.py end to end (store, resume, shards)."""
import importlib.util
import json
import os
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config

import tedloc_mm  # noqa: F401  (compat before open_clip / torchvision)
from tedloc_mm.pseudo_labels import CAMStore

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
TINY_CLIP = dict(embed_dim=32,
                 vision_cfg=dict(image_size=32, layers=2, width=32, patch_size=8, head_width=16),
                 text_cfg=dict(context_length=16, vocab_size=49408, width=32, heads=2, layers=1))
CLASSIFIER = dict(
    model=dict(
        type='ImageClassifier',
        backbone=dict(type='ViTEVA02',
                      arch=dict(embed_dims=32, num_layers=2, num_heads=2,
                                feedforward_channels=64),
                      img_size=32, patch_size=8),
        neck=None,
        head=dict(type='LinearClsHead', num_classes=3, in_channels=32),
        data_preprocessor=dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
                               to_rgb=True)))


@pytest.fixture(scope='module')
def tiny_clip(tmp_path_factory):
    import open_clip
    d = tmp_path_factory.mktemp('clipcfg')
    with open(d / 'tedloc-test-tiny-clip.json', 'w') as f:
        json.dump(TINY_CLIP, f)
    open_clip.add_model_config(str(d))
    torch.manual_seed(0)
    from tedloc_mm.pseudo_labels.clip_es_cam import build_open_clip
    return build_open_clip('tedloc-test-tiny-clip', None)


def reference_gradcam(model_fn, layer, x, target_fn, grid):
    """Grad-CAM written out by hand: token grads averaged -> weights -> ReLU(sum)."""
    store = {}

    def hook(_, __, out):
        out.retain_grad()
        store['a'] = out

    handle = layer.register_forward_hook(hook)
    try:
        target_fn(model_fn(x)[0]).backward()
    finally:
        handle.remove()
    h, w = grid
    a = store['a'][0, -h * w:].detach()  # (h*w, C): drop the class token
    g = store['a'].grad[0, -h * w:]
    cam = torch.relu(a @ g.mean(0)).reshape(h, w).numpy()
    cam = (cam - cam.min()) / (cam.max() - cam.min() + 1e-7)
    cam = cv2.resize(cam.astype(np.float32), (x.shape[-1], x.shape[-2]))
    return (cam - cam.min()) / (cam.max() - cam.min() + 1e-7)


def test_clip_es_gradcam_matches_a_hand_written_gradcam(tiny_clip):
    from tedloc_mm.pseudo_labels.clip_es_cam import CLIPESGradCAM
    model, tokenizer = tiny_clip
    names = ['red bird', 'blue bird', 'green frog']
    gen = CLIPESGradCAM(model, tokenizer, names, background_words=['sky', 'tree', 'water'])
    torch.manual_seed(1)
    x = torch.randn(3, 3, 32, 32)
    cams = gen(x, [0, 2, 1])
    assert cams.shape == (3, 32, 32) and cams.dtype == np.float32
    assert np.isfinite(cams).all() and cams.min() >= 0 and cams.max() <= 1 + 1e-6
    assert (cams.reshape(3, -1).max(1) > 0).any()
    # the same map, by hand, for image 1 (label 2): softmax over [class 2, 3 bg prompts]
    text = gen.model.text_features
    assert text.shape == (6, 32)

    def target(logits):
        return torch.softmax(logits[[2, 3, 4, 5]], dim=0)[0]

    ref = reference_gradcam(gen.model, model.visual.transformer.resblocks[-1].ln_1,
                            x[1:2], target, (4, 4))
    np.testing.assert_allclose(cams[1], ref, atol=1e-4)
    # batching does not mix images
    np.testing.assert_allclose(gen(x[1:2], [2])[0], cams[1], atol=1e-5)
    with pytest.raises(ValueError, match='label 5'):
        gen(x[:1], [5])


def test_clip_checkpoint_must_be_a_local_file():
    from tedloc_mm.pseudo_labels.clip_es_cam import build_open_clip
    with pytest.raises(FileNotFoundError, match='local file'):
        build_open_clip('ViT-B-16', 'laion2b_s34b_b88k')


def test_classifier_gradcam_on_tiny_vit(tmp_path):
    from tedloc_mm.pseudo_labels.classifier_cam import (ClassifierGradCAM, build_classifier,
                                                        default_target_layer)
    torch.manual_seed(0)
    model = build_classifier(Config(CLASSIFIER), None)
    assert default_target_layer(model) == 'backbone.layers.-1.norm1'
    gen = ClassifierGradCAM(model)
    x = torch.randn(2, 3, 32, 32)
    cams = gen(x, [1, 2])
    assert cams.shape == (2, 32, 32) and np.isfinite(cams).all()
    assert (cams.reshape(2, -1).max(1) > 0).any()

    def target(logits):
        return logits[2]

    ref = reference_gradcam(gen.model, model.backbone.layers[-1].norm1, x[1:2], target, (4, 4))
    np.testing.assert_allclose(cams[1], ref, atol=1e-4)


def make_split(root, n=5, size=(40, 30)):
    os.makedirs(osp.join(root, 'metadata', 'train'))
    ids = [f'c{i % 3}/im{i}.png' for i in range(n)]
    rng = np.random.default_rng(0)
    for i in ids:
        os.makedirs(osp.dirname(osp.join(root, i)), exist_ok=True)
        cv2.imwrite(osp.join(root, i), rng.integers(0, 255, (size[1], size[0], 3), np.uint8))
    write = lambda name, lines: open(osp.join(root, 'metadata', 'train', name), 'w').write(  # noqa
        ''.join(line + '\n' for line in lines))
    write('image_ids.txt', ids)
    write('class_labels.txt', [f'{i},{k % 3}' for k, i in enumerate(ids)])
    write('image_sizes.txt', [f'{i},{size[0]},{size[1]}' for i in ids])
    with open(osp.join(root, 'metadata', 'class_names.txt'), 'w') as f:
        f.write('red bird\nblue bird\ngreen frog\n')
    return ids


def load_tool():
    spec = importlib.util.spec_from_file_location('generate_cams',
                                                  osp.join(REPO, 'tools', 'generate_cams.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generate_cams_tool_shards_resumes_and_fills_the_store(tmp_path):
    root = str(tmp_path / 'data')
    ids = make_split(root)
    cfg_file = str(tmp_path / 'cls.py')
    Config(CLASSIFIER).dump(cfg_file)
    torch.manual_seed(0)
    from tedloc_mm.pseudo_labels.classifier_cam import build_classifier
    ckpt = str(tmp_path / 'cls.pth')
    torch.save(dict(state_dict=build_classifier(Config(CLASSIFIER), None).state_dict()), ckpt)
    out = str(tmp_path / 'store')
    tool = load_tool()
    common = ['classifier', cfg_file, ckpt, '--data-root', root, '--split', 'train', '--out',
              out, '--batch-size', '2', '--resolution', '16',  # input: the model's 32 px
              '--num-workers', '0', '--no-progress']
    tool.main(common + ['--shard', '1/2'])
    store = CAMStore(out)
    assert sorted(store.ids()) == sorted(ids[1::2])
    before = {i: store[i].copy() for i in store.ids()}
    tool.main(common + ['--shard', '0/2'])
    tool.main(common + ['--shard', '1/2'])  # resumed: nothing left to do
    store = CAMStore(out)
    assert sorted(store.ids()) == sorted(ids) and len(store) == len(ids)
    assert osp.getsize(osp.join(out, 'part-1-of-2.u8')) == 2 * 16 * 16
    for i, cam in before.items():
        np.testing.assert_array_equal(store[i], cam)
    for i in ids:
        assert store[i].shape == (16, 16) and store[i].dtype == np.uint8


def test_generate_cams_tool_clip_es_from_a_local_checkpoint(tmp_path, tiny_clip):
    model, _ = tiny_clip
    root = str(tmp_path / 'data')
    ids = make_split(root, n=3)
    ckpt = str(tmp_path / 'tiny_clip.pt')
    torch.save(model.state_dict(), ckpt)
    out = str(tmp_path / 'store')
    load_tool().main(['clip-es', '--model', 'tedloc-test-tiny-clip', '--checkpoint', ckpt,
                      '--data-root', root, '--out', out, '--input-size', '32',
                      '--resolution', '8', '--num-workers', '0', '--no-progress',
                      '--background-words', 'sky', 'grass'])
    store = CAMStore(out)
    assert sorted(store.ids()) == sorted(ids)
    # the stored CAM is the generator's map for the image, quantised
    from tedloc_mm.pseudo_labels import quantize_cam
    from tedloc_mm.pseudo_labels.clip_es_cam import CLIPESGradCAM
    from tedloc_mm.pseudo_labels.generation import clip_preprocess
    gen = CLIPESGradCAM(model, tiny_clip[1], ['red bird', 'blue bird', 'green frog'],
                        background_words=['sky', 'grass'])
    img = cv2.resize(cv2.imread(osp.join(root, ids[2])), (32, 32))
    cfg = model.visual.preprocess_cfg
    x = clip_preprocess(cfg['mean'], cfg['std'])(torch.from_numpy(img).permute(2, 0, 1)[None])
    want = quantize_cam(gen(x, [2])[0], 8)
    assert np.abs(store[ids[2]].astype(int) - want.astype(int)).max() <= 1


def test_parse_shard(monkeypatch):
    from tedloc_mm.pseudo_labels.generation import parse_shard
    assert parse_shard('2/4') == (2, 4)
    monkeypatch.setenv('RANK', '1')
    monkeypatch.setenv('WORLD_SIZE', '3')
    assert parse_shard(None) == (1, 3)
    with pytest.raises(ValueError):
        parse_shard('4/4')
    with pytest.raises(ValueError):
        parse_shard('x')
