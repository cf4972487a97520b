"""Inference API: init_localizer / inference_localizer on a tiny random TeD-Loc."""
import json
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.logging import MessageHub
from mmpretrain.structures import DataSample

import tedloc_mm  # noqa: F401
from tedloc_mm.evaluation import DEFAULT_CAM_THRESHOLD
from tedloc_mm.apis import (box_to_original, inference_localizer,
                            init_localizer)
from tedloc_mm.apis.inference_steps import LocalizationResult, inference_pipeline_cfg
from tedloc_mm.fileio import save_anchor_file
from inference_reference import (independent_box_edges, independent_map,  # noqa: F401
                                 rand_image, reference_prediction)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TINY_CFG = osp.join(ROOT, 'tests/data/configs/tiny_tedloc.py')
ANCHOR_NAMES = ['red heron', 'blue jay', 'green finch']


def tiny_cfg(anchor_file):
    cfg = Config.fromfile(TINY_CFG)
    cfg.model.head.anchor_file = anchor_file
    return cfg


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    """Anchor file, config and a saved checkpoint of a tiny TeD-Loc."""
    d = tmp_path_factory.mktemp('apis')
    anchors = str(d / 'anchors.pth')
    torch.manual_seed(0)
    save_anchor_file(anchors, torch.randn(3, 32), ANCHOR_NAMES, 'tiny', 'random-init',
                     ['a photo of a {}.'])
    cfg = tiny_cfg(anchors)
    torch.manual_seed(1)
    model = init_localizer(cfg, None)
    # give g a clear preference so maps are not near-constant
    with torch.no_grad():
        model.head.fg_classifier.weight.mul_(20)
    ckpt = str(d / 'tiny.pth')
    torch.save(dict(state_dict=model.state_dict(),
                    meta=dict(dataset_meta=dict(classes=('c0', 'c1', 'c2')))), ckpt)
    return dict(dir=d, cfg=cfg, ckpt=ckpt, anchors=anchors, state=model.state_dict())


def test_checkpoint_loads_exactly_and_class_names_come_from_its_meta(setup):
    model = init_localizer(setup['cfg'], setup['ckpt'])
    for k, v in setup['state'].items():
        torch.testing.assert_close(model.state_dict()[k], v, msg=k)
    # the checkpoint's dataset_meta wins over the anchor file's names
    assert model.dataset_meta['classes'] == ['c0', 'c1', 'c2']
    assert not model.training
    # without a checkpoint the anchor file's names are used
    assert init_localizer(setup['cfg'], None).dataset_meta['classes'] == ANCHOR_NAMES


@pytest.mark.parametrize('hw', [(64, 64), (50, 90), (120, 40)])
def test_results_shapes_scores_and_box_inside_original(setup, tmp_path, hw):
    model = init_localizer(setup['cfg'], setup['ckpt'], cam_threshold=0.3)
    img = rand_image(*hw, seed=hw[0])
    path = str(tmp_path / 'im.png')
    cv2.imwrite(path, img)
    res_file, res_arr = inference_localizer(model, [path, img], topk=2)
    h, w = hw
    ref_score, ref_map = reference_prediction(model, img)
    for res in (res_file, res_arr):
        assert res.ori_shape == hw and res.input_shape == (64, 64)
        assert res.pred_map.shape == hw and res.pred_map.dtype == np.float32
        assert res.pred_map.min() == 0 and res.pred_map.max() == pytest.approx(1)
        # top-k: sorted, names from the checkpoint, scores = the model's softmax
        assert len(res.topk) == 2 and res.topk[0]['score'] >= res.topk[1]['score']
        top = torch.topk(ref_score, 2)
        assert [t['label'] for t in res.topk] == top.indices.tolist()
        assert [t['name'] for t in res.topk] == [f'c{i}' for i in top.indices.tolist()]
        np.testing.assert_allclose([t['score'] for t in res.topk], top.values.numpy(),
                                   rtol=1e-5)
        # the map and the box, computed here with cv2 from the model's own raw map
        np.testing.assert_allclose(res.pred_map, independent_map(ref_map, hw), atol=1e-5)
        x0, y0, x1, y1 = res.bbox
        assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h
        assert res.bbox == pytest.approx(independent_box_edges(ref_map, 0.3, hw), abs=1e-9)
        assert res.cam_threshold == 0.3
        json.dumps(res.to_dict())  # JSON-ready
    assert res_file.img_id == path and res_arr.img_id == 'array_1'
    # the full score vector: the model's softmax over all 3 classes
    for res in (res_file, res_arr):
        assert res.pred_scores.dtype == np.float32 and res.pred_scores.shape == (3, )
        np.testing.assert_allclose(res.pred_scores, ref_score.numpy(), rtol=1e-5)


def test_one_image_gives_one_result_a_list_gives_a_list(setup, tmp_path):
    """As MMPretrain's inference_model: a path or an array -> its result, not a list."""
    model = init_localizer(setup['cfg'], setup['ckpt'], cam_threshold=0.3)
    img = rand_image(50, 60, seed=3)
    path = str(tmp_path / 'one.png')
    cv2.imwrite(path, img)
    one = inference_localizer(model, path)
    arr = inference_localizer(model, img)
    assert isinstance(one, LocalizationResult) and isinstance(arr, LocalizationResult)
    listed = inference_localizer(model, [path])
    assert isinstance(listed, list) and len(listed) == 1
    assert listed[0].to_dict() == one.to_dict()
    np.testing.assert_array_equal(listed[0].pred_scores, one.pred_scores)


def test_box_to_original_by_hand():
    # inclusive pixels 16..31 of 64 cover edges [16, 32): x 90/64, y 50/64
    assert box_to_original([16, 8, 31, 39], (64, 64), (50, 90)) == pytest.approx(
        [22.5, 6.25, 45.0, 31.25])
    assert box_to_original([0, 0, 63, 63], (64, 64), (50, 90)) == [0, 0, 90, 50]
    assert box_to_original([0, 0, 0, 0], (224, 224), (448, 224)) == [0, 0, 1, 2]


def test_threshold_precedence(setup, tmp_path):
    cfg, ckpt = setup['cfg'], setup['ckpt']
    model = init_localizer(cfg, ckpt)
    assert model.cam_threshold == DEFAULT_CAM_THRESHOLD == 0.5
    assert model.cam_threshold_source.startswith('default')
    # a checkpoint whose message hub logged a validation
    hub = MessageHub.get_instance('tedloc_test_hub')
    hub.update_scalar('val/wsol/best_thr', 0.2)
    hub.update_scalar('val/wsol/best_thr', 0.42)
    state = torch.load(ckpt, weights_only=True)  # a plain state dict: no allowlist needed
    state['message_hub'] = hub.state_dict()
    ckpt2 = str(tmp_path / 'with_hub.pth')
    torch.save(state, ckpt2)
    model = init_localizer(cfg, ckpt2)
    assert model.cam_threshold == pytest.approx(0.42)
    # a metrics file of tools/test.py --out beats the checkpoint
    metrics = str(tmp_path / 'metrics.json')
    json.dump({'wsol/MaxBoxAcc': 61.0, 'wsol/best_thr': 0.37}, open(metrics, 'w'))
    assert init_localizer(cfg, ckpt2, cam_threshold=metrics).cam_threshold == 0.37
    # a number beats everything, also per call
    assert init_localizer(cfg, ckpt2, cam_threshold=0.1).cam_threshold == 0.1
    res = inference_localizer(model, rand_image(64, 64, 0), cam_threshold=0.25)
    assert res.cam_threshold == 0.25


def test_clear_errors(setup, tmp_path):
    cfg = setup['cfg']
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        init_localizer(cfg, str(tmp_path / 'missing.pth'))
    with pytest.raises(ValueError, match=r'\[0, 1\)'):
        init_localizer(cfg, None, cam_threshold=1.5)
    bad = str(tmp_path / 'bad.json')
    json.dump({'wsol/MaxBoxAcc': 1.0}, open(bad, 'w'))
    with pytest.raises(KeyError, match='best_thr'):
        init_localizer(cfg, None, cam_threshold=bad)
    model = init_localizer(cfg, None)
    with pytest.raises(FileNotFoundError, match='nope.jpg'):
        inference_localizer(model, str(tmp_path / 'nope.jpg'))
    with pytest.raises(ValueError, match='#0'):
        inference_localizer(model, np.zeros((8, 8, 4), np.uint8))


def test_missing_anchor_file_is_taken_from_checkpoint(setup):
    cfg = tiny_cfg('/nonexistent/anchors.pth')
    model = init_localizer(cfg, setup['ckpt'])
    torch.testing.assert_close(model.head.anchors, setup['state']['head.anchors'])
    with pytest.raises(FileNotFoundError, match='anchors.pth'):
        init_localizer(cfg, None)


def test_pipeline_is_built_from_the_test_pipeline(setup):
    steps = [s['type'] for s in inference_pipeline_cfg(setup['cfg'])]
    assert steps == ['WSOLResize', 'PackInputs']
    # a crop cannot be mapped back to the original image: refused, not wrong
    cfg = tiny_cfg(setup['anchors'])
    cfg.test_dataloader.dataset.pipeline = [
        dict(type='LoadImageFromFile'), dict(type='WSOLResize', scale=(80, 80)),
        dict(type='CenterCrop', crop_size=64), dict(type='PackWSOLInputs')]
    model = init_localizer(cfg, None)
    with pytest.raises(NotImplementedError, match='resize'):
        inference_localizer(model, rand_image(70, 70, 1))
