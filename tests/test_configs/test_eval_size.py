"""The paper's evaluation size (§4.1: maps evaluated at 256 x 256) in the paper configs:
GT boxes go from the original image to 256 x 256 exactly as ``rescale_boxes`` says
(int truncation), and 224 stays one option away."""
import os
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config

import tedloc_mm  # noqa: F401  (the import hooks of tedloc_mm.compat, first)
from tedloc_mm.evaluation.box_protocol import rescale_boxes
from tedloc_mm.registry import METRICS

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
# config -> whether it validates during training (the zero-shot ones do not train)
PAPER = {'configs/tedloc_eva-l_cub.py': True, 'configs/tedloc_eva-l_ilsvrc.py': True,
         'configs/clip/clip-es_vit-b-16_gt_cub.py': False,
         'configs/clip/naclip_vit-b-16_patch-text_ilsvrc.py': False}


@pytest.mark.parametrize('config', sorted(PAPER))
def test_paper_configs_evaluate_at_256(config):
    cfg = Config.fromfile(osp.join(ROOT, config))
    assert cfg.test_evaluator.eval_size == 256
    validates = cfg.get('val_evaluator') is not None
    assert validates == PAPER[config]
    if validates:  # selection at the same size (its CAM-curve interval is coarser)
        assert cfg.val_evaluator.eval_size == 256
    cfg.merge_from_dict({'test_evaluator.eval_size': 224})   # the one option back to 224
    assert cfg.test_evaluator.eval_size == 224


def _sample(ori_hw, boxes, pred_map):
    return dict(img_id='x', ori_shape=ori_hw, img_shape=(224, 224),
                ori_gt_bboxes=torch.tensor(boxes, dtype=torch.float32),
                pred_map=torch.from_numpy(pred_map), gt_label=torch.tensor([0]),
                pred_score=torch.tensor([0.9, 0.1]))


def test_256_evaluation_rescales_boxes_by_truncation():
    cfg = Config.fromfile(osp.join(ROOT, 'configs/tedloc_eva-l_cub.py'))
    metric = METRICS.build(cfg.test_evaluator)
    assert metric.eval_size == (256, 256)
    # a 200 x 50 (W x H) image: x * 256 / 200, y * 256 / 50, truncated
    hand = np.array([[int(10 * 1.28), int(5 * 5.12), int(30 * 1.28), int(20 * 5.12)]])
    assert hand.tolist() == [[12, 25, 38, 102]]
    got = metric._gt_boxes(_sample((50, 200), [[10, 5, 30, 20]], np.zeros((224, 224))),
                           (256, 256))
    np.testing.assert_array_equal(got, hand)
    np.testing.assert_array_equal(rescale_boxes([[10, 5, 30, 20]], (50, 200), (256, 256)), hand)

    # end to end: GT (1, 1, 2, 2) in a 100 x 100 image is (2, 2, 5, 5) at 256 px
    # (2.56 -> 2, 5.12 -> 5; rounding would give (3, 3, 5, 5)). A 256 px map lit on
    # rows / columns 2..4 has the box (2, 2, 5, 5): IoU 1 at every IoU threshold only
    # with truncated boxes (rounded ones give IoU 9/16 < 0.7).
    pred = np.zeros((256, 256), np.float32)
    pred[2:5, 2:5] = 1
    metric.process(None, [_sample((100, 100), [[1, 1, 2, 2]], pred)])
    res = metric.compute_metrics(metric.results)
    assert res['MaxBoxAccV2@0.7'] == 100 and res['MaxBoxAcc'] == 100


# every paper config that gives a Table 1 / 4 row: scored on the authors' test grid
PAPER_TEST_CONFIGS = ['configs/tedloc_eva-l_cub.py', 'configs/tedloc_eva-l_ilsvrc.py'] + [
    f'configs/clip/{name}' for name in sorted(os.listdir(osp.join(ROOT, 'configs', 'clip')))
    if 'vit-b-16' in name and name.endswith('.py')]


@pytest.mark.parametrize('config', PAPER_TEST_CONFIGS)
def test_paper_rows_are_tested_on_one_cam_curve_grid(config):
    """TeD-Loc and the CLIP baselines: the test's CAM thresholds step by 0.001 (the
    authors' test interval), at 256 px."""
    cfg = Config.fromfile(osp.join(ROOT, config))
    assert cfg.test_evaluator.type == 'tedloc.WSOLMetric'
    assert cfg.test_evaluator.cam_curve_interval == 0.001, config
    assert cfg.test_evaluator.eval_size == 256


def test_the_bird_row_maps_every_cub_class_to_bird():
    """Table 1's text row: CLIP-ES (GT-Known) on CUB with "bird" for all 200 classes,
    otherwise the CLIP-ES GT config."""
    bird = Config.fromfile(osp.join(ROOT, 'configs/clip/clip-es_vit-b-16_gt_cub-bird.py'))
    base = Config.fromfile(osp.join(ROOT, 'configs/clip/clip-es_vit-b-16_gt_cub.py'))
    assert bird.model.class_names == ['bird'] * 200
    assert bird.model.cam_class == 'gt' and bird.model.cam == base.model.cam
    assert {k: v for k, v in bird.model.items() if k != 'class_names'} == \
        {k: v for k, v in base.model.items() if k != 'class_names'}
