"""CAM generation: classifier Grad-CAM (tiny random MMPretrain ViT), and tools/generate_cams.py
end to end (store, resume, shards; clip-es from an OpenAI archive or an open_clip file against
an independent computation). CLIP-ES's pieces are tested in tests/test_clip/test_clip_es_cam.py."""
import importlib.util
import os
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config

import tedloc_mm  # noqa: F401  (compat before open_clip / torchvision)
from tedloc_mm.fileio.cam_store import CAMStore

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
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


def test_clip_checkpoint_must_be_a_local_file():
    from tedloc_mm.clip.es_cam import build_open_clip
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


def test_generate_cams_classifier_stores_the_gt_class_gradcam(tmp_path):
    """tools/generate_cams.py classifier: each stored CAM is the Grad-CAM of the image's
    ground-truth class, computed here independently: the image read with OpenCV,
    resized (bilinear) to the model's 32 px, normalised by hand with the config's
    mean / std (RGB), a hand-written Grad-CAM on the model's own logits, then the
    store's 8-bit quantisation. The CAMs of the other classes differ (the label
    matters; measured: by 150 to 255 levels)."""
    from tedloc_mm.fileio.cam_store import quantize_cam
    from tedloc_mm.pseudo_labels.classifier_cam import build_classifier
    root = str(tmp_path / 'data')
    ids = make_split(root, n=3)
    cfg_file = str(tmp_path / 'cls.py')
    Config(CLASSIFIER).dump(cfg_file)
    torch.manual_seed(1)
    model = build_classifier(Config(CLASSIFIER), None)
    ckpt = str(tmp_path / 'cls.pth')
    torch.save(dict(state_dict=model.state_dict()), ckpt)
    out = str(tmp_path / 'store')
    load_tool().main(['classifier', cfg_file, ckpt, '--data-root', root, '--out', out,
                      '--resolution', '16', '--batch-size', '2', '--num-workers', '0',
                      '--no-progress'])
    store = CAMStore(out)
    assert sorted(store.ids()) == sorted(ids)
    mean = np.array(CLASSIFIER['model']['data_preprocessor']['mean'])
    std = np.array(CLASSIFIER['model']['data_preprocessor']['std'])
    layer = model.backbone.layers[-1].norm1

    def logits(x):
        return model(x, mode='tensor')

    for k, img_id in enumerate(ids):          # make_split: image k has label k % 3
        bgr = cv2.resize(cv2.imread(osp.join(root, img_id)), (32, 32),
                         interpolation=cv2.INTER_LINEAR)
        x = torch.from_numpy(((bgr[:, :, ::-1] - mean) / std).transpose(2, 0, 1).copy())
        x = x.float()[None]
        cams = {y: quantize_cam(reference_gradcam(logits, layer, x, lambda out, y=y: out[y],
                                                  (4, 4)), 16)
                for y in range(3)}
        stored = store[img_id].astype(int)
        label = k % 3
        assert np.abs(stored - cams[label].astype(int)).max() <= 1, img_id
        for other in set(range(3)) - {label}:
            assert np.abs(stored - cams[other].astype(int)).max() > 50, (img_id, other)


@pytest.fixture(scope='module')
def openai_files(tmp_path_factory):
    """A tiny OpenAI-shaped CLIP as an OpenAI TorchScript archive and as an open_clip
    state dict (same weights), and that model in float32."""
    import open_clip

    from clip_reference import TINY_OPENAI_NAME, register_tiny_openai, write_openai_archive
    d = tmp_path_factory.mktemp('openai_clip')
    register_tiny_openai(d)
    torch.manual_seed(5)
    src = open_clip.create_model(TINY_OPENAI_NAME, pretrained=None).eval()
    ref = write_openai_archive(src, d / 'ViT-tiny.pt')
    torch.save(ref.state_dict(), d / 'tiny.bin')
    return str(d / 'ViT-tiny.pt'), str(d / 'tiny.bin'), ref, TINY_OPENAI_NAME


def reference_clip_es_cam(model, img_bgr, names, label, bg_words, size, store_res):
    """The stored CAM of one image computed independently: the image read and
    normalised by hand, a hand-written Grad-CAM of the [label, background] softmax
    on open_clip's own forward, NumPy CAA with torch's attention weights, min-max,
    bilinear resize, then the store's 8-bit quantisation at its resolution."""
    from clip_reference import gradcam, mha_weights, minmax, numpy_caa, text_embeddings
    from tedloc_mm.fileio.cam_store import quantize_cam
    rgb = cv2.resize(img_bgr, (size, size), interpolation=cv2.INTER_LINEAR)[:, :, ::-1]
    mean = np.array([0.48145466, 0.4578275, 0.40821073])   # OpenAI CLIP's
    std = np.array([0.26862954, 0.26130258, 0.27577711])
    x = torch.from_numpy(((rgb / 255.0 - mean) / std).transpose(2, 0, 1).copy()).float()[None]
    text = text_embeddings(model, open_clip_tokenizer(), names + bg_words,
                           ['a clean origami {}.'])
    bg = list(range(len(names), len(names) + len(bg_words)))
    cam = gradcam(model, x, text, label, bg)
    attn = torch.stack(mha_weights(model, x)).mean(0)[0, 1:, 1:].numpy()  # all 2 layers
    refined = minmax(numpy_caa(cam, attn)).astype(np.float32)
    return quantize_cam(cv2.resize(refined, (size, size)), store_res)


def open_clip_tokenizer():
    import open_clip

    from clip_reference import TINY_OPENAI_NAME
    return open_clip.get_tokenizer(TINY_OPENAI_NAME)


@pytest.mark.parametrize('fmt', ['openai_archive', 'open_clip_state_dict'])
def test_generate_cams_tool_clip_es_from_a_local_checkpoint(tmp_path, openai_files, fmt):
    archive, state_dict, model, name = openai_files
    root = str(tmp_path / 'data')
    ids = make_split(root, n=3)
    out = str(tmp_path / 'store')
    load_tool().main(['clip-es', '--model', name,
                      '--checkpoint', archive if fmt == 'openai_archive' else state_dict,
                      '--data-root', root, '--out', out, '--input-size', '32',
                      '--resolution', '8', '--num-workers', '0', '--no-progress',
                      '--background-words', 'sky', 'grass'])
    store = CAMStore(out)
    assert sorted(store.ids()) == sorted(ids)
    names = ['red bird', 'blue bird', 'green frog']
    for k, img_id in enumerate(ids):   # make_split: image k has label k % 3
        want = reference_clip_es_cam(model, cv2.imread(osp.join(root, img_id)), names, k % 3,
                                     ['sky', 'grass'], 32, 8)
        assert np.abs(store[img_id].astype(int) - want.astype(int)).max() <= 1, img_id
        assert int(store[img_id].max()) - int(store[img_id].min()) > 100   # not a blank map


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


def test_a_checkpoint_with_other_classes_is_refused_or_fitted(tmp_path):
    """A 3-class checkpoint with a 5-class config: MMPretrain's loader only warns and
    keeps the random head (random CAMs); build_classifier names both shapes, and with
    num_classes=3 (the data set's) it loads the trained head."""
    import torch
    from mmengine.config import Config
    from tedloc_mm.pseudo_labels.classifier_cam import build_classifier
    cfg_path = osp.join(REPO, 'tests/data/configs/tiny_classifier.py')
    trained = build_classifier(cfg_path, None)
    with torch.no_grad():
        trained.head.fc.weight.normal_()
    ckpt = str(tmp_path / 'probe3.pth')
    torch.save(dict(state_dict=trained.state_dict()), ckpt)
    five = Config.fromfile(cfg_path)
    five.model.head.num_classes = five.model.data_preprocessor.num_classes = 5
    with pytest.raises(ValueError, match=r'probe3.pth does not fit.*head.fc.weight: \(3, 32\) '
                       r'in the file, \(5, 32\) in the model'):
        build_classifier(five, ckpt)
    model = build_classifier(five, ckpt, num_classes=3)
    torch.testing.assert_close(model.head.fc.weight, trained.head.fc.weight)
