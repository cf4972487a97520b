"""Every bad input of issue 12 gives a correct result or an error naming the file.

The 13 inputs of the issue (truncated / empty / missing image, an id missing from
class_labels.txt, a box outside its image, an unknown label, a malformed line,
image_sizes.txt disagreeing with the file, missing / truncated checkpoint, grayscale and
RGBA images, a missing mask, class_names.txt shorter than the labels) plus a PNG with a
wrong extension, a CMYK JPEG and a 16-bit PNG: each through the dataset and its
pipeline (unit level), three of them end to end through ``tools/test.py``. Then the
opt-in skip policy of unreadable training images, and unreadable checkpoints.
"""
import io
import logging
import os
import os.path as osp
import re
import shutil
import subprocess
import sys
import zipfile

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.logging import MMLogger
from mmengine.runner.checkpoint import CheckpointLoader
from PIL import Image
from torch.utils.data import DataLoader

import tedloc_mm  # noqa: F401
from tedloc_mm.fileio.checkpoint import CheckpointReadError
from tedloc_mm.datasets import LoadWSOLAnnotations, LoadWSOLImage, WSOLDataset
from tedloc_mm.embedded_benchmarks.gliders import generate_synthetic_wsol
from tedloc_mm.fileio import ImageReadError, WSOLMetadataError

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TINY = osp.join(ROOT, 'tests/data/configs/tiny_tedloc.py')


def _pixels(h, w, seed):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3)).astype(np.uint8)


def make_split(root, n=4, split='val', size=(24, 16), masks=False):
    """n plain BGR PNGs a/img{k}.png (w x h = size), label k % 2, one box each."""
    w, h = size
    d = osp.join(root, 'metadata', split)
    os.makedirs(d, exist_ok=True)
    os.makedirs(osp.join(root, 'a'), exist_ok=True)
    ids = [f'a/img{k}.png' for k in range(n)]
    lines = dict(image_ids=[], class_labels=[], image_sizes=[], localization=[],
                 localization_masks=[])
    for k, img_id in enumerate(ids):
        cv2.imwrite(osp.join(root, img_id), _pixels(h, w, k))
        lines['image_ids'].append(img_id)
        lines['class_labels'].append(f'{img_id},{k % 2}')
        lines['image_sizes'].append(f'{img_id},{w},{h}')
        lines['localization'].append(f'{img_id},1,2,{w - 3},{h - 1}')
        if masks:
            mask = np.zeros((h, w), np.uint8)
            mask[2:h - 1, 1:w - 3] = 255
            cv2.imwrite(osp.join(root, f'a/mask{k}.png'), mask)
            lines['localization_masks'].append(f'{img_id},a/mask{k}.png,')
    if not masks:
        del lines['localization_masks']
    for name, rows in lines.items():
        with open(osp.join(d, name + '.txt'), 'w') as f:
            f.write(''.join(r + '\n' for r in rows))
    with open(osp.join(root, 'metadata', 'class_names.txt'), 'w') as f:
        f.write('cat\ndog\n')
    return ids


def edit_line(root, name, lineno, text, split='val'):
    """Replace (text) or delete (None) 1-based line ``lineno`` of a metadata file."""
    path = osp.join(root, 'metadata', split, name)
    rows = open(path).read().splitlines()
    if text is None:
        rows.pop(lineno - 1)
    else:
        rows[lineno - 1] = text
    with open(path, 'w') as f:
        f.write(''.join(r + '\n' for r in rows))
    return path


def replace_in_file(path, old, new):
    with open(path) as f:
        text = f.read()
    with open(path, 'w') as f:
        f.write(text.replace(old, new))


def dataset(root, **kw):
    kw.setdefault('pipeline', [LoadWSOLImage(), LoadWSOLAnnotations()])
    kw.setdefault('test_mode', True)
    return WSOLDataset(data_root=root, split=kw.pop('split', 'val'), **kw)


# =============================================================== images, unit level
def test_truncated_image(tmp_path):
    root = str(tmp_path)
    make_split(root)
    path = osp.join(root, 'a/img1.png')
    data = open(path, 'rb').read()
    open(path, 'wb').write(data[:len(data) // 2])
    with pytest.raises(ImageReadError, match=re.escape(f"{path} (image id 'a/img1.png')")
                       + '.*truncated'):
        dataset(root)[1]


def test_empty_image(tmp_path):
    root = str(tmp_path)
    make_split(root)
    path = osp.join(root, 'a/img2.png')
    open(path, 'wb').close()
    with pytest.raises(ImageReadError, match=re.escape(path) + r".*0-byte file"):
        dataset(root)[2]


def test_missing_image(tmp_path):
    root = str(tmp_path)
    make_split(root)
    path = osp.join(root, 'a/img3.png')
    os.remove(path)
    with pytest.raises(FileNotFoundError, match=re.escape(path)):
        dataset(root)  # check_images: at construction
    ds = dataset(root, check_images=False)  # the ILSVRC config: when it is loaded
    with pytest.raises(FileNotFoundError, match=re.escape(path) + '.*file not found'):
        ds[3]


@pytest.mark.parametrize('case', ['id missing from class_labels', 'box outside its image',
                                  'unknown label', 'malformed line',
                                  'class_names shorter than the labels'])
def test_metadata_errors_name_file_and_line(tmp_path, case):
    root = str(tmp_path)
    make_split(root)
    if case == 'id missing from class_labels':
        path, where, words = edit_line(root, 'class_labels.txt', 2, None), '', "'a/img1.png'"
    elif case == 'box outside its image':
        path = edit_line(root, 'localization.txt', 3, 'a/img2.png,1,2,25,15')  # w = 24
        where, words = ':3:', 'outside'
    elif case == 'unknown label':
        path = edit_line(root, 'class_labels.txt', 4, 'a/img3.png,7')
        where, words = ':4:', 'unknown class 7'
    elif case == 'malformed line':
        path = edit_line(root, 'image_sizes.txt', 2, 'a/img1.png;24;16')
        where, words = ':2:', 'expected 3 comma-separated fields'
    else:  # two names, a label 2 on line 1
        path = edit_line(root, 'class_labels.txt', 1, 'a/img0.png,2')
        names = osp.join(root, 'metadata', 'class_names.txt')
        where = ':1:'
        words = f"unknown class 2 for 'a/img0.png' (expected 0 <= label < 2, the number " \
                f'of names in {names})'
    with pytest.raises(WSOLMetadataError) as e:
        dataset(root)
    assert str(e.value).startswith(path + (where or ':')), str(e.value)
    assert words in str(e.value)


def test_image_sizes_txt_disagreeing_with_the_file(tmp_path):
    root = str(tmp_path)
    make_split(root)
    path = osp.join(root, 'a/img0.png')
    cv2.imwrite(path, _pixels(17, 24, 0))  # the metadata says h = 16
    with pytest.raises(ValueError, match=re.escape(path) + r'.*\(17, 24\).*image_sizes'):
        dataset(root)[0]


def test_missing_mask(tmp_path):
    root = str(tmp_path)
    make_split(root, masks=True)
    path = osp.join(root, 'a/mask1.png')
    os.remove(path)
    with pytest.raises(FileNotFoundError, match=re.escape(path)) as e:
        dataset(root)[1]
    assert "'a/img1.png'" in str(e.value)
    open(path, 'wb').close()  # an empty mask file: the image reader's error
    with pytest.raises(ImageReadError, match=re.escape(path) + '.*0-byte'):
        dataset(root)[1]


# the formats that give a correct result: (writer, the pixels the loader must give)
def _gray(path, bgr):
    gray = bgr[..., 1]
    cv2.imwrite(path, gray)
    return np.repeat(gray[..., None], 3, axis=2)  # replicated


def _rgba(path, bgr):
    alpha = np.random.default_rng(9).integers(0, 256, bgr.shape[:2]).astype(np.uint8)
    cv2.imwrite(path, np.dstack([bgr, alpha]))
    return bgr  # alpha dropped, colour unchanged


def _png16(path, bgr):
    # 257 v + r with r <= 128: round((257 v + r) * 255 / 65535) = v, by hand
    v = bgr.astype(np.int64) * 257
    r = np.minimum(np.random.default_rng(3).integers(0, 129, bgr.shape), 65535 - v)
    cv2.imwrite(path, (v + r).astype(np.uint16))
    return bgr


def _cmyk(path, bgr):
    with open(path, 'wb') as f:  # JPEG bytes under the .png name: wrong extension too
        Image.fromarray(bgr[..., ::-1]).convert('CMYK').save(f, 'JPEG', quality=95)
    return np.asarray(Image.open(path).convert('RGB'))[..., ::-1]  # PIL's colours


def _png_named_jpg(path, bgr):
    cv2.imwrite(path + '.png', bgr)
    os.replace(path + '.png', path)
    return bgr


FORMATS = dict(gray=_gray, rgba=_rgba, png16=_png16, cmyk=_cmyk)


@pytest.mark.parametrize('fmt', sorted(FORMATS) + ['png_named_jpg'])
def test_formats_that_give_a_correct_result(tmp_path, fmt):
    root = str(tmp_path)
    make_split(root)
    if fmt == 'png_named_jpg':
        for name in ('image_ids', 'class_labels', 'image_sizes', 'localization'):
            replace_in_file(osp.join(root, 'metadata', 'val', name + '.txt'), 'a/img1.png',
                            'a/img1.jpg')
        path, write = osp.join(root, 'a/img1.jpg'), _png_named_jpg
    else:
        path, write = osp.join(root, 'a/img1.png'), FORMATS[fmt]
    want = write(path, _pixels(16, 24, 1))
    out = dataset(root)[1]
    assert out['img'].shape == (16, 24, 3) and out['img'].dtype == np.uint8
    tol = 2 if fmt == 'cmyk' else 0  # two JPEG decoders (libjpeg in OpenCV and PIL)
    assert np.abs(out['img'].astype(int) - want).max() <= tol


# =============================================================== skip policy
@pytest.fixture
def log_lines():
    logger = MMLogger.get_instance('test_bad_inputs_skip')  # becomes the current one
    records = []
    handler = logging.Handler()
    handler.emit = lambda r: records.append(r.getMessage())
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)


def _train_set(root, n_bad, n=10, **kw):
    """n images, the first n_bad of them 0-byte files."""
    ids = make_split(root, n=n, split='train')
    for img_id in ids[:n_bad]:
        open(osp.join(root, img_id), 'wb').close()
    return ids, WSOLDataset(data_root=root, split='train',
                            pipeline=[LoadWSOLImage()], **kw)


def test_default_policy_is_an_error(tmp_path):
    _, ds = _train_set(str(tmp_path), n_bad=1)
    with pytest.raises(ImageReadError, match='img0.png.*0-byte'):
        ds[0]


def test_skip_draws_another_image_and_counts_and_logs_it(tmp_path, log_lines):
    ids, ds = _train_set(str(tmp_path), n_bad=1, bad_image_policy='skip',
                         max_bad_image_fraction=0.1)
    np.random.seed(0)
    out = ds[0]
    assert out['img_id'] in ids[1:] and out['img'].shape == (16, 24, 3)
    assert ds.bad_image_indices == {0}
    skipped = [m for m in log_lines if 'skipped unreadable image' in m]
    assert len(skipped) == 1 and "'a/img0.png'" in skipped[0] and '0-byte' in skipped[0]
    ds[0]  # the same image again: still one distinct bad image
    assert ds.bad_image_indices == {0}


def test_skip_raises_once_the_bad_fraction_is_exceeded(tmp_path):
    ids, ds = _train_set(str(tmp_path), n_bad=3, bad_image_policy='skip',
                         max_bad_image_fraction=0.2)  # 10 images: at most 2 bad
    assert ds.prepare_data(0) is None and ds.prepare_data(1) is None
    with pytest.raises(RuntimeError, match=r'3 unreadable images.*max_bad_image_fraction='
                       r'0\.2.*img2\.png'):
        ds.prepare_data(2)


def test_skip_is_refused_in_test_mode(tmp_path):
    make_split(str(tmp_path))
    with pytest.raises(ValueError, match='training policy'):
        dataset(str(tmp_path), bad_image_policy='skip')


def _loader_ids(ds, workers):
    loader = DataLoader(ds, batch_size=1, num_workers=workers, collate_fn=pseudo_collate,
                        worker_init_fn=lambda i: np.random.seed(i))
    return [b['img_id'][0] for b in loader]


def test_skip_in_dataloader_workers_counts_per_worker(tmp_path):
    """12 images, 1 bad, 2 workers: each worker's share is 6 images."""
    ids, ds = _train_set(str(tmp_path), n_bad=1, n=12, bad_image_policy='skip',
                         max_bad_image_fraction=0.2)  # per worker 1.2 bad: 1 is fine
    got = _loader_ids(ds, 2)
    assert len(got) == 12 and ids[0] not in got and set(got) <= set(ids[1:])
    ds.max_bad_image_fraction = 0.1  # one process: limit 1.2, 1 bad is fine
    assert len(_loader_ids(ds, 0)) == 12
    # ... but a worker's limit is 0.6: its first bad image stops the run
    with pytest.raises(RuntimeError, match=r'1 unreadable images met by this loading '
                       r'process exceed max_bad_image_fraction=0\.1 of its share of 6 images'
                       r'.*img0\.png'):
        _loader_ids(ds, 2)


# =============================================================== checkpoints
def _good_checkpoint(path):
    torch.save(dict(meta=dict(epoch=np.int64(3)), state_dict={'w': torch.arange(6.)}), path)
    return path


def _zip_of_something_else(path):
    with zipfile.ZipFile(path, 'w') as z:
        z.writestr('weights.txt', 'w = 1, 2, 3')


def _legacy_truncated(path):
    buf = io.BytesIO()
    torch.save({'w': torch.randn(50)}, buf, _use_new_zipfile_serialization=False)
    open(path, 'wb').write(buf.getvalue()[:300])


def _safetensors_truncated(path):
    from safetensors.torch import save
    open(path, 'wb').write(save({'w': torch.randn(40)})[:30])


def _cut(keep):
    def write(path):
        data = open(_good_checkpoint(path), 'rb').read()
        open(path, 'wb').write(data[:keep] if keep < 0 else data[:int(len(data) * keep)])
    return write


BAD_CHECKPOINTS = {
    'truncated at half': (_cut(0.5), 'truncated'),
    'last 10 bytes cut': (_cut(-10), 'truncated'),
    'empty': (lambda p: open(p, 'wb').close(), '0-byte file'),
    'html page': (lambda p: open(p, 'w').write('<!DOCTYPE html><p>403</p>'), 'HTML'),
    'git lfs pointer': (lambda p: open(p, 'w').write(
        'version https://git-lfs.github.com/spec/v1\noid sha256:1\nsize 9\n'), 'Git LFS'),
    'zip of something else': (_zip_of_something_else, 'not a PyTorch checkpoint'),
    'random bytes': (lambda p: open(p, 'wb').write(b'\x07\x01abc' * 20),
                     'not a PyTorch checkpoint'),
    'legacy pickle truncated': (_legacy_truncated, 'legacy'),
    'safetensors truncated': (_safetensors_truncated, 'safetensors'),
}


@pytest.mark.parametrize('case', sorted(BAD_CHECKPOINTS))
def test_unreadable_checkpoint_names_file_and_cause(tmp_path, case):
    write, words = BAD_CHECKPOINTS[case]
    path = str(tmp_path / 'model.pth')
    write(path)
    # the loader of load_from, --resume, tools/test.py, init_localizer, the EVA backbone
    with pytest.raises(CheckpointReadError) as e:
        CheckpointLoader.load_checkpoint(path, map_location='cpu')
    assert str(e.value).startswith(f'cannot load checkpoint {path}: '), str(e.value)
    assert words in e.value.reason


def test_whole_checkpoints_still_load(tmp_path):
    ckpt = CheckpointLoader.load_checkpoint(_good_checkpoint(str(tmp_path / 'a.pth')))
    assert ckpt['meta']['epoch'] == 3  # a NumPy scalar: the Runner allowlist
    from safetensors.torch import save_file
    save_file({'w': torch.arange(4.)}, str(tmp_path / 'b.safetensors'))
    got = CheckpointLoader.load_checkpoint(str(tmp_path / 'b.safetensors'))
    assert torch.equal(got['w'], torch.arange(4.))


def test_a_whole_file_is_not_misdiagnosed(tmp_path, monkeypatch):
    """torch.load failing on a whole checkpoint (e.g. CUDA tensors on a CPU machine):
    the file is named with torch's own message, no 'truncated'."""
    path = _good_checkpoint(str(tmp_path / 'cuda.pth'))

    def fail(*a, **k):
        raise RuntimeError('Attempting to deserialize object on a CUDA device')

    monkeypatch.setattr(torch, 'load', fail)
    with pytest.raises(CheckpointReadError, match='CUDA device') as e:
        CheckpointLoader.load_checkpoint(path)
    assert path in str(e.value) and 'truncated' not in e.value.reason


def test_missing_checkpoint(tmp_path):
    path = str(tmp_path / 'nowhere.pth')
    with pytest.raises(FileNotFoundError, match=re.escape(path)):
        CheckpointLoader.load_checkpoint(path)


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    """The tiny TeD-Loc config (anchors set) and a checkpoint of it."""
    from tedloc_mm.apis import init_localizer
    from tedloc_mm.fileio import save_anchor_file
    d = tmp_path_factory.mktemp('tiny')
    anchors = str(d / 'anchors.pth')
    torch.manual_seed(0)
    save_anchor_file(anchors, torch.randn(3, 32), ['a', 'b', 'c'], 'tiny', 'random-init',
                     ['{}'])
    cfg = Config.fromfile(TINY)
    cfg.model.head.anchor_file = anchors
    cfg.custom_hooks = []
    ckpt = str(d / 'tiny.pth')
    torch.save(dict(state_dict=init_localizer(cfg, None).state_dict()), ckpt)
    return d, cfg, ckpt


def test_truncated_checkpoint_in_init_localizer_backbone_and_lean_tool(tiny, tmp_path):
    import importlib.util

    from tedloc_mm.apis import init_localizer
    from tedloc_mm.registry import MODELS
    _, cfg, ckpt = tiny
    bad = str(tmp_path / 'cut.pth')
    open(bad, 'wb').write(open(ckpt, 'rb').read()[:5000])
    with pytest.raises(CheckpointReadError, match=re.escape(bad) + '.*truncated'):
        init_localizer(cfg, bad)
    backbone = MODELS.build(dict(cfg.model.backbone, checkpoint=bad))
    with pytest.raises(CheckpointReadError, match=re.escape(bad) + '.*truncated'):
        backbone.init_weights()
    spec = importlib.util.spec_from_file_location(
        'lean_tool', osp.join(ROOT, 'tools/model_converters/lean_checkpoint.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    cfg_file = str(tmp_path / 'cfg.py')
    cfg.dump(cfg_file)
    with pytest.raises(CheckpointReadError, match=re.escape(bad) + '.*truncated'):
        tool.main([cfg_file, bad, str(tmp_path / 'lean.pth')])


# =============================================================== end to end: tools/test.py
def _test_tool(cfg_file, ckpt, work_dir, out=None):
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS='1')
    args = [sys.executable, 'tools/test.py', cfg_file, ckpt, '--work-dir', work_dir]
    return subprocess.run(args + (['--out', out] if out else []), cwd=ROOT, env=env,
                          capture_output=True, text=True)


def _config(cfg, data_root, loader, path):
    cfg = Config(cfg.to_dict())
    cfg.val_dataloader.dataset.data_root = data_root
    cfg.val_dataloader.dataset.pipeline[0] = dict(type=loader)
    cfg.test_dataloader = cfg.val_dataloader
    cfg.dump(path)
    return cfg


def test_tools_test_on_odd_formats_equals_plain_images(tiny, tmp_path):
    """Gray, RGBA, 16-bit, CMYK-named-.png and PNG-named-.jpg images: tools/test.py gives
    exactly the metrics of the same images stored as plain 8-bit BGR PNGs (read by
    MMCV's LoadImageFromFile, in this process)."""
    from mmengine.runner import Runner
    _, cfg, ckpt = tiny
    plain = str(tmp_path / 'plain')
    generate_synthetic_wsol(plain, seed=5, num_classes=3, num_train=0, num_val=2,
                            num_test=0, image_size=64)
    odd = str(tmp_path / 'odd')
    shutil.copytree(plain, odd)
    ids = open(osp.join(plain, 'metadata/val/image_ids.txt')).read().split()
    for img_id, write in zip(ids, [_gray, _rgba, _png16, _cmyk]):
        bgr = cv2.imread(osp.join(plain, img_id))
        want = write(osp.join(odd, img_id), bgr)
        if write is _cmyk:  # OpenCV's own CMYK conversion (cv2.IMREAD_COLOR, as MMCV),
            want = cv2.imread(osp.join(odd, img_id))  # not PIL's (1-2 levels apart)
        cv2.imwrite(osp.join(plain, img_id), want)
    renamed = ids[4][:-4] + '.jpg'  # the 5th: a PNG named .jpg in the metadata
    os.replace(osp.join(odd, ids[4]), osp.join(odd, renamed))
    for name in os.listdir(osp.join(odd, 'metadata/val')):
        replace_in_file(osp.join(odd, 'metadata/val', name), ids[4], renamed)

    odd_cfg = str(tmp_path / 'odd_cfg.py')
    _config(cfg, odd, 'LoadWSOLImage', odd_cfg)
    out = str(tmp_path / 'odd.json')
    proc = _test_tool(odd_cfg, ckpt, str(tmp_path / 'w_odd'), out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    import json
    got = json.load(open(out))

    ref = _config(cfg, plain, 'LoadImageFromFile', str(tmp_path / 'plain_cfg.py'))
    ref.load_from, ref.work_dir = ckpt, str(tmp_path / 'w_plain')
    ref.experiment_name = 'bad_inputs_plain'
    want = Runner.from_cfg(ref).test()
    assert set(got) == set(want) and len(got) > 3
    for k in want:
        assert got[k] == float(want[k]), k


def test_tools_test_empty_image_and_truncated_checkpoint(tiny, tmp_path):
    _, cfg, ckpt = tiny
    data = str(tmp_path / 'data')
    generate_synthetic_wsol(data, seed=5, num_classes=3, num_train=0, num_val=1,
                            num_test=0, image_size=64)
    cfg_file = str(tmp_path / 'cfg.py')
    _config(cfg, data, 'LoadWSOLImage', cfg_file)
    # a truncated checkpoint (the issue: OSError [Errno 22] from PyTorchFileReader)
    cut = str(tmp_path / 'cut.pth')
    open(cut, 'wb').write(open(ckpt, 'rb').read()[:-100])
    proc = _test_tool(cfg_file, cut, str(tmp_path / 'w1'))
    assert proc.returncode != 0
    assert f'CheckpointReadError: cannot load checkpoint {cut}: truncated' in proc.stderr
    # an empty image (the issue: cv2.error !buf.empty() without a file name)
    img_id = open(osp.join(data, 'metadata/val/image_ids.txt')).readline().strip()
    open(osp.join(data, img_id), 'wb').close()
    proc = _test_tool(cfg_file, ckpt, str(tmp_path / 'w2'))
    assert proc.returncode != 0
    want = f"ImageReadError: cannot read image {osp.join(data, img_id)} (image id " \
           f"'{img_id}'): 0-byte file"
    assert want in proc.stderr, proc.stderr[-3000:]
