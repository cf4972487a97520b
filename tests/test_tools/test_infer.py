"""tools/infer.py writes overlays and a JSON file; draw_localization draws what it says."""
import importlib.util
import json
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.visualization import Visualizer

import tedloc_mm  # noqa: F401
from tedloc_mm.apis import init_localizer
from tedloc_mm.fileio import save_anchor_file
from tedloc_mm.visualization import draw_localization, predicted_box_edges

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def load_tool():
    spec = importlib.util.spec_from_file_location('infer_tool', osp.join(ROOT, 'tools/infer.py'))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    d = tmp_path_factory.mktemp('infer')
    anchors = str(d / 'anchors.pth')
    save_anchor_file(anchors, torch.randn(3, 32, generator=torch.Generator().manual_seed(0)),
                     ['ant', 'bee', 'cow'], 'tiny',
                     'random-init', ['{}'])
    cfg_file = str(d / 'cfg.py')
    cfg = Config.fromfile(osp.join(ROOT, 'tests/data/configs/tiny_tedloc.py'))
    cfg.model.head.anchor_file = anchors
    cfg.dump(cfg_file)
    torch.manual_seed(0)
    ckpt = str(d / 'tiny.pth')
    torch.save(dict(state_dict=init_localizer(cfg, None).state_dict()), ckpt)
    return d, cfg_file, ckpt


def expected_result(cfg_file, ckpt, path, threshold, topk):
    """What tools/infer.py should report for one image, computed without the inference
    API: the image read with OpenCV, resized bilinearly to the 64 px input, normalised
    by hand (RGB, CLIP mean / std), the checkpoint's model run on it; the protocol's box
    traced with OpenCV at the input size (largest contour, boundingRect's x + w, y + h
    as an inclusive box) and scaled to the original pixels as edges [x0, x1 + 1)."""
    from mmpretrain.structures import DataSample

    from tedloc_mm.models.localizers.tedloc import CLIP_MEAN, CLIP_STD
    from tedloc_mm.registry import MODELS
    cfg = Config.fromfile(cfg_file)
    model = MODELS.build(cfg.model).eval()
    model.load_state_dict(torch.load(ckpt, map_location='cpu', weights_only=True)['state_dict'])
    bgr = cv2.imread(path)
    h, w = bgr.shape[:2]
    rgb = cv2.resize(bgr, (64, 64), interpolation=cv2.INTER_LINEAR)[:, :, ::-1].copy()
    x = torch.from_numpy(rgb).permute(2, 0, 1).float()[None]
    x = (x - torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)) / torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        out = model(x, [DataSample(metainfo=dict(img_shape=(64, 64)))], mode='predict')[0]
    score = out.pred_score.numpy()
    order = np.argsort(-score)[:topk]
    names = ['ant', 'bee', 'cow']
    top = [(names[k], float(score[k])) for k in order]
    m = out.pred_map.numpy().astype(np.float64)
    map8 = ((m - m.min()) / (m.max() - m.min()) * 255).astype(np.uint8)
    mask = (map8 > int(threshold * map8.max())).astype(np.uint8)
    contours = cv2.findContours(mask, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)[0]
    bx, by, bw, bh = cv2.boundingRect(max(contours, key=cv2.contourArea))
    box_in = [bx, by, min(bx + bw, 63), min(by + bh, 63)]
    edges = [box_in[0] * w / 64, box_in[1] * h / 64, (box_in[2] + 1) * w / 64,
             (box_in[3] + 1) * h / 64]
    return top, box_in, edges


def test_infer_tool_on_folder_and_file(tiny, tmp_path):
    d, cfg_file, ckpt = tiny
    rng = np.random.default_rng(0)
    folder = tmp_path / 'imgs'
    (folder / 'sub').mkdir(parents=True)
    shapes = {'a.png': (40, 70), 'sub/b.jpg': (64, 64)}
    for name, (h, w) in shapes.items():
        img = rng.integers(0, 256, (h, w, 3)).astype(np.uint8)
        img[h // 4:h // 2, w // 3:2 * w // 3] = 255      # a bright patch: some structure
        cv2.imwrite(str(folder / name), img)
    single = tmp_path / 'c.png'
    cv2.imwrite(str(single), rng.integers(0, 256, (90, 30, 3)).astype(np.uint8))
    (folder / 'notes.txt').write_text('not an image')
    out_dir = tmp_path / 'out'
    out = load_tool().main([cfg_file, ckpt, str(folder), str(single), '--out-dir',
                            str(out_dir), '--topk', '2', '--cam-threshold', '0.6'])
    data = json.load(open(out_dir / 'results.json'))
    assert data == json.loads(json.dumps(out))
    assert data['cam_threshold'] == 0.6
    res = data['results']
    expected = {str(folder / 'a.png'): (40, 70), str(folder / 'sub/b.jpg'): (64, 64),
                str(single): (90, 30)}
    assert {r['img_path']: tuple(r['ori_shape']) for r in res} == expected
    boxes = set()
    for r in res:
        h, w = r['ori_shape']
        top, box_in, edges = expected_result(cfg_file, ckpt, r['img_path'], 0.6, 2)
        assert [t['name'] for t in r['topk']] == [name for name, _ in top]
        assert [t['score'] for t in r['topk']] == pytest.approx([s for _, s in top], abs=1e-6)
        assert r['pred_label'] == ['ant', 'bee', 'cow'].index(top[0][0])
        assert r['input_shape'] == [64, 64] and r['cam_threshold'] == 0.6
        assert r['bbox_input'] == box_in
        assert r['bbox'] == pytest.approx(edges, abs=1e-9)
        boxes.add(tuple(box_in))
        vis = cv2.imread(str(out_dir / r['vis_file']))
        # the image at its own size, the top classes in a strip to its right
        assert vis is not None and vis.shape[0] == h and vis.shape[1] > w
        orig = cv2.imread(r['img_path'])
        assert np.abs(vis[:, :w].astype(int) - orig.astype(int)).mean() > 5  # heat map drawn
    assert len(boxes) == 3          # the images got boxes of their own, not one box
    assert sorted(r['vis_file'] for r in res) == ['vis/a.png', 'vis/c.png', 'vis/sub/b.png']


def test_infer_tool_missing_input(tiny, tmp_path):
    d, cfg_file, ckpt = tiny
    with pytest.raises(FileNotFoundError, match='nothing_here'):
        load_tool().main([cfg_file, ckpt, str(tmp_path / 'nothing_here'), '--out-dir',
                          str(tmp_path / 'o')])


def test_draw_localization_boxes_and_heat_map():
    vis = Visualizer.get_instance('tedloc_test_draw')
    img = np.zeros((64, 64, 3), np.uint8)
    drawn = draw_localization(vis, img, None, pred_boxes=[[30, 30, 60, 50]],
                              gt_boxes=[[4, 4, 20, 20]])
    assert drawn.shape == img.shape

    # pred box red on its left edge, GT box green on its left edge, far pixels untouched
    left_pred = drawn[32:48, 29:32].reshape(-1, 3).astype(int)
    assert (left_pred[:, 0] > 150).any() and (left_pred[:, 1] < 60).all()
    left_gt = drawn[6:18, 3:6].reshape(-1, 3).astype(int)
    assert (left_gt[:, 1] > 150).any() and (left_gt[:, 0] < 60).all()
    assert (drawn[40:45, 40:45] == 0).all() and (drawn[60:, :20] == 0).all()
    # a heat map: the hot pixel becomes red-ish (JET), the cold one blue-ish
    m = np.zeros((64, 64), np.float32)
    m[10, 10] = 1
    heat = draw_localization(vis, img, m, alpha=1.0)
    assert heat[10, 10, 0] > 100 and heat[10, 10, 2] < 50
    assert heat[50, 50, 2] > 100 and heat[50, 50, 0] < 50


def test_predicted_box_edges_matches_protocol():
    m = np.zeros((32, 32))
    m[5:10, 8:20] = 1.0  # pixels x 8..19, y 5..9
    # the protocol's box is boundingRect's (x, y, x + w, y + h) = (8, 5, 20, 10), read
    # as inclusive pixels (its IoU adds 1): edges [8, 21) x [5, 11)
    np.testing.assert_array_equal(predicted_box_edges(m, 0.5), [[8, 5, 21, 11]])
    assert predicted_box_edges(np.ones((8, 8)), 0.5) is None


def test_overlay_states_the_cam_threshold_and_its_source(tiny, tmp_path, monkeypatch):
    """The strip beside each overlay ends with the CAM threshold and where it came from;
    the overlays keep the image's stem (no doubled suffix); --out-dir defaults to
    outputs/ as in MMDetection's demo."""
    import tedloc_mm.apis.wsol_inferencer as inferencer_module
    d, cfg_file, ckpt = tiny
    drawn = []
    real = inferencer_module.draw_localization

    def spy(visualizer, image, map01=None, pred_boxes=None, gt_boxes=None, texts=(),
            alpha=0.5):
        drawn.append(list(texts))
        return real(visualizer, image, map01, pred_boxes, gt_boxes, texts, alpha)
    monkeypatch.setattr(inferencer_module, 'draw_localization', spy)
    img = str(tmp_path / 'x.jpg')
    cv2.imwrite(img, np.random.default_rng(1).integers(0, 256, (48, 48, 3)).astype(np.uint8))
    tool = load_tool()
    tool.main([cfg_file, ckpt, img, '--out-dir', str(tmp_path / 'o'), '--cam-threshold',
               '0.6', '--topk', '2'])
    assert drawn[-1][-1] == 'CAM threshold 0.60 (given)'
    assert len(drawn[-1]) == 3          # the top-2 classes, then the threshold
    assert sorted(p.name for p in (tmp_path / 'o' / 'vis').iterdir()) == ['x.png']
    tool.main([cfg_file, ckpt, img, '--out-dir', str(tmp_path / 'o2')])
    assert drawn[-1][-1] == 'CAM threshold 0.50 (default (no validation threshold given))'
    assert tool.parse_args([cfg_file, ckpt, img]).out_dir == 'outputs'
