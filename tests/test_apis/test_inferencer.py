"""WSOLInferencer: agrees with inference_localizer and tools/infer.py, with an
independent computation of map and box, and with itself across batch sizes."""
import importlib.util
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmpretrain.structures import DataSample

import tedloc_mm  # noqa: F401
from tedloc_mm.apis import WSOLInferencer, inference_localizer, init_localizer
from tedloc_mm.fileio import save_anchor_file
from tedloc_mm.visualization import WSOLVisualizer

from inference_reference import (independent_box_edges, independent_map, rand_image,
                                 reference_prediction)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
#: (h, w) of the test images: square, wide, tall, odd sizes
SHAPES = [(64, 64), (50, 90), (120, 40), (77, 131), (33, 47)]
THR = 0.3


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp('inferencer')
    anchors = str(d / 'anchors.pth')
    torch.manual_seed(0)
    save_anchor_file(anchors, torch.randn(3, 32), ['ant', 'bee', 'cow'], 'tiny',
                     'random-init', ['{}'])
    cfg = Config.fromfile(osp.join(ROOT, 'tests/data/configs/tiny_tedloc.py'))
    cfg.model.head.anchor_file = anchors
    cfg_file = str(d / 'cfg.py')
    cfg.dump(cfg_file)
    torch.manual_seed(1)
    model = init_localizer(cfg, None)
    with torch.no_grad():  # a clear preference of g, so that maps are not near-constant
        model.head.fg_classifier.weight.mul_(20)
    ckpt = str(d / 'tiny.pth')
    torch.save(dict(state_dict=model.state_dict()), ckpt)
    paths = []
    for i, (h, w) in enumerate(SHAPES):
        paths.append(str(d / f'im{i}.png'))
        cv2.imwrite(paths[-1], rand_image(h, w, seed=10 + i))
    inferencer = WSOLInferencer(cfg_file, ckpt, device='cpu', cam_threshold=THR,
                                show_progress=False)
    return dict(dir=d, cfg_file=cfg_file, ckpt=ckpt, paths=paths, inferencer=inferencer)


def load_tool():
    spec = importlib.util.spec_from_file_location('infer_tool', osp.join(ROOT, 'tools/infer.py'))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_inferencer_inference_localizer_and_tool_agree(setup, tmp_path):
    paths = setup['paths']
    dicts = setup['inferencer'](paths, topk=2)
    model = init_localizer(setup['cfg_file'], setup['ckpt'], cam_threshold=THR)
    results = inference_localizer(model, paths, topk=2)
    tool = load_tool().main([setup['cfg_file'], setup['ckpt'], *paths, '--out-dir',
                             str(tmp_path / 'out'), '--topk', '2', '--cam-threshold',
                             str(THR), '--batch-size', '2', '--no-overlay'])['results']
    assert len(dicts) == len(results) == len(tool) == len(paths)
    for d, r, t, (h, w) in zip(dicts, results, tool, SHAPES):
        assert d['img_path'] == r.img_path == t['img_path']
        assert tuple(d['ori_shape']) == r.ori_shape == tuple(t['ori_shape']) == (h, w)
        labels = [x['label'] for x in d['topk']]
        assert labels == [x['label'] for x in r.topk] == [x['label'] for x in t['topk']]
        assert d['pred_label'] == labels[0] and d['pred_class'] == d['topk'][0]['name']
        assert d['bbox'] == r.bbox == t['bbox']
        assert d['bbox_input'] == r.bbox_input == t['bbox_input']
        np.testing.assert_array_equal(d['pred_map'], r.pred_map)


def test_map_and_box_match_an_independent_computation(setup):
    """cv2 resize + the model's own predict for the raw map; cv2 resize / threshold /
    findContours written out here for the displayed map and the box."""
    inferencer = setup['inferencer']
    results = inferencer(setup['paths'], topk=3, as_dict=False)
    boxes_seen = set()
    for path, res in zip(setup['paths'], results):
        img = cv2.imread(path)
        h, w = img.shape[:2]
        score, raw = reference_prediction(inferencer.model, img)
        top = torch.topk(score, 3)
        assert [t['label'] for t in res.topk] == top.indices.tolist()
        assert [t['name'] for t in res.topk] == [['ant', 'bee', 'cow'][i]
                                                 for i in top.indices.tolist()]
        np.testing.assert_allclose([t['score'] for t in res.topk], top.values.numpy(),
                                   rtol=1e-5)
        np.testing.assert_allclose(res.pred_map, independent_map(raw, (h, w)), atol=1e-5)
        assert res.bbox == pytest.approx(independent_box_edges(raw, THR, (h, w)), abs=1e-9)
        boxes_seen.add(tuple(res.bbox_input))
    assert len(boxes_seen) > 1  # the maps differ: not one box for every image


def assert_same_result(a, b):
    assert (a.img_id, a.ori_shape, a.input_shape) == (b.img_id, b.ori_shape, b.input_shape)
    assert [t['label'] for t in a.topk] == [t['label'] for t in b.topk]
    assert a.bbox == b.bbox and a.bbox_input == b.bbox_input
    np.testing.assert_allclose([t['score'] for t in a.topk], [t['score'] for t in b.topk],
                               rtol=0, atol=1e-5)
    np.testing.assert_allclose(a.pred_map, b.pred_map, rtol=0, atol=1e-5)


def test_batch_size_does_not_change_results(setup):
    """Non-square images of different sizes, paths and arrays mixed, in batches of 1,
    2 and all: the same classes and boxes; scores and maps equal to float32 rounding
    (batched matrix products round differently: measured up to 3e-6 on the maps)."""
    inferencer = setup['inferencer']
    inputs = [p if i % 2 else cv2.imread(p) for i, p in enumerate(setup['paths'])]
    one = inferencer(inputs, batch_size=1, as_dict=False)
    for bs in (2, len(inputs)):
        many = inferencer(inputs, batch_size=bs, as_dict=False)
        for a, b in zip(one, many):
            assert_same_result(a, b)


def test_batch_of_different_input_sizes_is_split_not_padded(setup, monkeypatch):
    """A keep-ratio resize gives inputs of different sizes: a batch runs them in runs
    of equal size (the data preprocessor would pad them) and equals batch size 1."""
    keep_ratio = [dict(type='LoadImageFromFile'),
                  dict(type='WSOLResize', scale=(64, 64), keep_ratio=True),
                  dict(type='PackWSOLInputs')]
    inferencer = WSOLInferencer(setup['cfg_file'], setup['ckpt'], cam_threshold=THR,
                                cfg_options={'test_dataloader.dataset.pipeline': keep_ratio},
                                show_progress=False)
    paths = setup['paths'] + setup['paths'][:1]
    one = inferencer(paths, batch_size=1, as_dict=False)
    assert len({r.input_shape for r in one}) == len(SHAPES)  # sizes really differ
    forwarded = []
    real_forward = WSOLInferencer.forward

    def spy(self, data, **kw):
        forwarded.append([tuple(x.shape[-2:]) for x in data['inputs']])
        return real_forward(self, data, **kw)

    monkeypatch.setattr(WSOLInferencer, 'forward', spy)
    many = inferencer(paths, batch_size=len(paths), as_dict=False)
    assert all(len(set(shapes)) == 1 for shapes in forwarded)
    for a, b in zip(one, many):
        assert_same_result(a, b)


def test_visualization_through_the_registered_visualizer(setup, tmp_path):
    inferencer = setup['inferencer']
    assert isinstance(inferencer.visualizer, WSOLVisualizer)
    paths = setup['paths'][:2]
    arr = rand_image(40, 30, seed=5)
    out = inferencer([*paths, arr], show_dir=str(tmp_path / 'vis'), return_vis=True)
    names = ['im0', 'im1', 'array_2']
    for item, name, src in zip(out, names, [*paths, arr]):
        png = cv2.imread(str(tmp_path / 'vis' / f'{name}.png'))
        np.testing.assert_array_equal(png[..., ::-1], item['vis'])  # file = returned RGB
        src = cv2.imread(src) if isinstance(src, str) else src
        assert png.shape[0] >= src.shape[0] and png.shape[1] >= src.shape[1]
        assert np.abs(png[:src.shape[0], :src.shape[1]].astype(int) - src).mean() > 5
    # named outputs in sub-folders, as tools/infer.py asks
    inferencer(paths, show_dir=str(tmp_path / 'v2'), vis_names=['a/x', 'b/y'])
    assert osp.isfile(tmp_path / 'v2' / 'a' / 'x.png')
    assert osp.isfile(tmp_path / 'v2' / 'b' / 'y.png')
    # no picture unless asked
    assert 'vis' not in inferencer(paths[:1])[0]


def test_datasamples_folder_input_and_errors(setup, tmp_path):
    inferencer = setup['inferencer']
    samples = inferencer(setup['paths'][:2], return_datasamples=True)
    assert all(isinstance(s, DataSample) and s.pred_map.shape == (64, 64) for s in samples)
    # a folder: its image files, sorted, other files ignored
    (tmp_path / 'imgs').mkdir()
    (tmp_path / 'imgs' / 'notes.txt').write_text('not an image')
    for name in ('b.png', 'a.png'):
        cv2.imwrite(str(tmp_path / 'imgs' / name), rand_image(20, 30, seed=1))
    res = inferencer(str(tmp_path / 'imgs'))
    assert [osp.basename(r['img_path']) for r in res] == ['a.png', 'b.png']
    res = inferencer([setup['paths'][0], str(tmp_path / 'imgs')])  # also inside a list
    assert [osp.basename(r['img_path']) for r in res] == ['im0.png', 'a.png', 'b.png']
    with pytest.raises(ValueError, match='topk'):
        inferencer(setup['paths'][:1], topk=0)
    with pytest.raises(ValueError, match='unknown argument'):
        inferencer(setup['paths'][:1], colour='red')
    with pytest.raises(FileNotFoundError, match='nope.py'):
        WSOLInferencer(str(tmp_path / 'nope.py'))
    with pytest.raises(FileNotFoundError, match='none.pth'):
        WSOLInferencer(setup['cfg_file'], str(tmp_path / 'none.pth'))
    with pytest.raises(AttributeError, match='.cfg'):
        WSOLInferencer(torch.nn.Linear(2, 2))
    # a built localizer is adopted as it is (what inference_localizer does)
    adopted = WSOLInferencer(inferencer.model, show_progress=False)
    assert adopted.model is inferencer.model
