"""tools/analysis_tools/eval_scoremaps.py: wsolevaluation's layouts, hand-made cases,
agreement with evaluate_maps, workers and bad input."""
import importlib.util
import json
import os
import os.path as osp
import subprocess
import sys

import cv2
import numpy as np
import pytest

from tedloc_mm.evaluation import evaluate_maps, rescale_boxes
from tedloc_mm.evaluation.scoremap_dir import ScoremapError, load_mask
from tedloc_mm.evaluation.per_image_results import read_per_image_results

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(REPO, 'tools', 'analysis_tools', 'eval_scoremaps.py')
S = 224


def _tool():
    spec = importlib.util.spec_from_file_location('eval_scoremaps_tool', TOOL)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


eval_tool = _tool()


# ----------------------------------------------------------------- data builders
def write_split(meta_root, dataset, split, items, with_sizes=True):
    """The reference's metadata files. items: dicts with ``id``, ``label``, ``size``
    (w, h), and ``boxes`` [(x0, y0, x1, y1)] or ``masks`` [path] + ``ignore`` path
    (named on the image's first line only, as in wsolevaluation's OpenImages)."""
    d = osp.join(meta_root, dataset, split)
    os.makedirs(d, exist_ok=True)
    loc = []
    for it in items:
        for b in it.get('boxes', []):
            loc.append(f'{it["id"]},' + ','.join(str(int(v)) for v in b))
        for k, m in enumerate(it.get('masks', [])):
            loc.append(f'{it["id"]},{m},{it["ignore"] if k == 0 else ""}')
    files = {
        'image_ids.txt': [it['id'] for it in items],
        'class_labels.txt': [f'{it["id"]},{it["label"]}' for it in items],
        'image_sizes.txt': ([f'{it["id"]},{it["size"][0]},{it["size"][1]}' for it in items]
                            if with_sizes else []),
        'localization.txt': loc,
    }
    for name, lines in files.items():
        with open(osp.join(d, name), 'w') as f:
            f.write('\n'.join(lines) + ('\n' if lines else ''))


def save_map(root, img_id, cam):
    path = osp.join(root, img_id + '.npy')        # the reference's naming
    os.makedirs(osp.dirname(path), exist_ok=True)
    np.save(path, cam)
    return path


def rect_map(*rects):
    """224 x 224 float64 map: value v on rows y0..y1, cols x0..x1 (inclusive)."""
    cam = np.zeros((S, S))
    for (x0, y0, x1, y1), v in rects:
        cam[y0:y1 + 1, x0:x1 + 1] = v
    return cam


def smooth_map(rng, normalised=True):
    cam = cv2.resize(rng.random((7, 7)), (S, S), interpolation=cv2.INTER_CUBIC)
    cam = (cam - cam.min()) / (cam.max() - cam.min())
    return cam if normalised else 0.2 + 0.6 * cam


def random_boxes(rng, w, h):
    out = []
    for _ in range(rng.integers(1, 4)):
        x0, y0 = rng.integers(0, w // 2), rng.integers(0, h // 2)
        out.append((x0, y0, rng.integers(x0 + 5, w), rng.integers(y0 + 5, h)))
    return out


def run(tmp_path, dataset, *extra, split='test', workers=1):
    return eval_tool.main([
        '--scoremap_root', str(tmp_path / 'maps'), '--metadata_root', str(tmp_path / 'meta'),
        '--mask_root', str(tmp_path / 'masks'), '--dataset_name', dataset, '--split', split,
        '--workers', str(workers), '--no_progress', *extra])


# ---------------------------------------------------- CUB: hand-computed numbers
def build_cub_hand(tmp_path):
    """Five 448 x 448 images (boxes halve to 224 px); binary maps whose boxes are
    known. boundingRect's box ends one pixel past the mask (x + w), so a mask on
    pixels 20..119 gives the box 20..120."""
    gt = (40, 40, 239, 239)                     # -> (20, 20, 119, 119) at 224 px
    items = [
        # A: the map is exactly the GT box: IoU 100^2 / 101^2 = 0.98 -> hit at 30/50/70
        dict(id='001.a/A.jpg', label=1, cam=rect_map(((20, 20, 119, 119), 1.0)), boxes=[gt]),
        # B: the map is off the object: IoU 0
        dict(id='001.a/B.jpg', label=5, cam=rect_map(((150, 150, 200, 200), 1.0)), boxes=[gt]),
        # C: GT (0, 0, 99, 99) at 224 px; map cols 50..148, rows 0..98 -> box
        # (50, 0, 149, 99): intersection 50 x 100, union 2 x 100^2 - 5000 -> IoU 1/3
        dict(id='002.b/C.jpg', label=7, cam=rect_map(((50, 0, 148, 98), 1.0)),
             boxes=[(0, 0, 198, 198)]),
        # D: GT (20, 20, 59, 59); a weaker blob exactly on it (IoU 1) and a stronger,
        # larger blob off it: the largest contour misses (V1), all contours hit (V2)
        # for every CAM threshold below 127/255
        dict(id='002.b/D.jpg', label=3,
             cam=rect_map(((20, 20, 58, 58), 0.5), ((120, 120, 200, 200), 1.0)),
             boxes=[(40, 40, 118, 118)]),
        # E: like A
        dict(id='003.c/E.jpg', label=0, cam=rect_map(((20, 20, 119, 119), 1.0)), boxes=[gt]),
    ]
    for it in items:
        it['size'] = (448, 448)
        save_map(tmp_path / 'maps', it['id'], it['cam'])
    write_split(tmp_path / 'meta', 'CUB', 'test', items)
    return items


# top-k classes per image: A top-1 wrong / top-2 right, B right, C wrong, D right, E right
# (read in the wrong order, E's top-1 would be wrong)
TOPK_LINES = ['001.a/A.jpg,2,1,3', '001.a/B.jpg,5', '002.b/C.jpg,0,1,2,3,4', '002.b/D.jpg,3',
              '003.c/E.jpg,0,1,2,3,4']


def test_cub_hand_made_numbers(tmp_path, capsys):
    build_cub_hand(tmp_path)
    pred = tmp_path / 'pred.txt'
    pred.write_text('# image id, top-5 classes\n' + '\n'.join(TOPK_LINES) + '\n')
    res = run(tmp_path, 'CUB', '--predictions', str(pred))
    m = res['metrics']
    # largest contour: hits A, C, E at IoU 30; A, E at 50 and 70 (of 5 images)
    assert [m['MaxBoxAcc@0.3'], m['MaxBoxAcc@0.5'], m['MaxBoxAcc@0.7']] == [60.0, 40.0, 40.0]
    assert m['MaxBoxAcc'] == 40.0 and m['best_thr'] == 0.0
    # all contours: D joins at every IoU
    assert [m['MaxBoxAccV2@0.3'], m['MaxBoxAccV2@0.5'], m['MaxBoxAccV2@0.7']] == [80.0, 60.0, 60.0]
    assert m['MaxBoxAccV2'] == pytest.approx(200 / 3)
    # Top-1 Loc: E only (D's class is right but its V1 box misses)
    assert (m['Top1Loc'], m['Top1Cls']) == (20.0, 60.0)
    # A, B and D carry fewer than 5 classes: Top-5 is not known (not Top-1 repeated)
    assert 'Top5Loc' not in m and 'Top5Cls' not in m and res['top5_na']
    # the reference's printed number: MaxBoxAcc at IoU 50 without the multi flags
    assert res['localization'] == 40.0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == 'Loading and evaluating cams.'
    assert 'Top-5 Loc: n/a (some prediction lines carry fewer than 5 classes)' in out
    assert 'Top-5 Cls: n/a (some prediction lines carry fewer than 5 classes)' in out
    assert out[-1] == 'localization: 40.0'
    # V2 as the reference reports it; the same maps, so the same numbers
    v2 = run(tmp_path, 'CUB', '--multi_contour_eval', '--multi_iou_eval')
    assert v2['localization'] == float(np.average([80.0, 60.0, 60.0]))
    assert capsys.readouterr().out.splitlines()[-1] == 'localization: 66.66666666666667'
    # V1 over the IoU list, V2 at IoU 50
    assert run(tmp_path, 'CUB', '--multi_iou_eval')['localization'] == pytest.approx(140 / 3)
    assert run(tmp_path, 'CUB', '--multi_contour_eval', 'true')['localization'] == 60.0


def test_predictions_as_score_vectors(tmp_path):
    items = build_cub_hand(tmp_path)
    # 8 classes: the classes of each top-k line above score 10, 9, ... in that order,
    # the others a small distinct baseline (class 7 highest), so every image's top-5
    # starts with its top-k line
    lines = []
    for it, topk in zip(items, TOPK_LINES):
        score = np.linspace(0.0, 0.01, 8)                  # a tiny distinct baseline
        for rank, c in enumerate(topk.split(',')[1:]):
            score[int(c)] = 10.0 - rank
        lines.append(it['id'] + ',' + ','.join(f'{s:.4f}' for s in score))
    pred = tmp_path / 'scores.txt'
    pred.write_text('\n'.join(lines) + '\n')
    m = run(tmp_path, 'CUB', '--predictions', str(pred))['metrics']
    assert (m['Top1Loc'], m['Top5Loc'], m['Top1Cls']) == (20.0, 40.0, 60.0)
    # C (label 7): classes 0..4 fill its top-5, so 7 stays out, as with the top-k line
    assert m['Top5Cls'] == 80.0


def test_maps_are_evaluated_as_saved_not_renormalised(tmp_path):
    """A map at 0.2 with the object at 1.0: as saved (the reference), the 8-bit
    background is 51, so the mask is the object only from the first CAM threshold
    t with int(t * 255) >= 51; min-max normalised it would be from t = 0."""
    it = dict(id='001.a/X.jpg', label=0, size=(448, 448), boxes=[(40, 40, 239, 239)])
    write_split(tmp_path / 'meta', 'CUB', 'test', [it])
    cam = np.full((S, S), 0.2)
    cam[20:120, 20:120] = 1.0
    save_map(tmp_path / 'maps', it['id'], cam)
    m = run(tmp_path, 'CUB')['metrics']
    first = next(t for t in np.arange(0, 1, 0.01) if int(t * 255) >= 51)
    assert m['MaxBoxAcc'] == 100.0 and m['best_thr'] == first > 0.15
    # with --resize_scoremaps (min-max, as inference.py) the background is 0
    assert run(tmp_path, 'CUB', '--resize_scoremaps')['metrics']['best_thr'] == 0.0


def test_metadata_without_sizes_only_for_masks(tmp_path):
    from tedloc_mm.fileio.wsol_metadata import WSOLMetadataError, read_wsol_split
    it = dict(id='a/X.jpg', label=0, size=(448, 448), boxes=[(4, 4, 20, 20)])
    write_split(tmp_path / 'meta', 'CUB', 'test', [it], with_sizes=False)
    split = str(tmp_path / 'meta' / 'CUB' / 'test')
    with pytest.raises(WSOLMetadataError, match='image_sizes.txt: 1 image id'):
        read_wsol_split(split)
    with pytest.raises(WSOLMetadataError, match=r'localization.txt:1: .*needs its image size'):
        read_wsol_split(split, require_sizes=False)


# ----------------------------------------- ILSVRC: against evaluate_maps, workers
def build_ilsvrc(tmp_path, num=14, seed=0):
    rng = np.random.default_rng(seed)
    items, maps, boxes, scores = [], [], [], []
    for i in range(num):
        w, h = int(rng.integers(120, 500)), int(rng.integers(120, 500))
        it = dict(id=f'val/ILSVRC2012_val_{i + 1:08d}.JPEG', label=int(rng.integers(0, 6)),
                  size=(w, h), boxes=random_boxes(rng, w, h))
        cam = smooth_map(rng, normalised=i % 3 != 0)      # some maps never reach 0 / 1
        save_map(tmp_path / 'maps', it['id'], cam.astype(np.float32 if i % 2 else np.float64))
        items.append(it)
        maps.append(cam.astype(np.float32 if i % 2 else np.float64))
        boxes.append(rescale_boxes(it['boxes'], (h, w), (S, S)))
        scores.append(rng.random(6))
    write_split(tmp_path / 'meta', 'ILSVRC', 'val', items)
    pred = tmp_path / 'scores.txt'
    pred.write_text(''.join(f'{it["id"]},' + ','.join(repr(float(v)) for v in s) + '\n'
                            for it, s in zip(items, scores)))
    return items, maps, boxes, scores, pred


def test_ilsvrc_layout_matches_evaluate_maps_and_workers(tmp_path):
    items, maps, boxes, scores, pred = build_ilsvrc(tmp_path)
    assert osp.isfile(tmp_path / 'maps' / 'val' / 'ILSVRC2012_val_00000001.JPEG.npy')
    res1 = run(tmp_path, 'ILSVRC', '--predictions', str(pred), '--cam_curve_interval', '0.05',
               split='val', workers=1)
    res2 = run(tmp_path, 'ILSVRC', '--predictions', str(pred), '--cam_curve_interval', '0.05',
               split='val', workers=2)
    assert res1 == res2
    ref = evaluate_maps(maps, boxes, labels=[it['label'] for it in items], scores=scores,
                        cam_curve_interval=0.05, normalize=False)
    for key, value in ref.items():
        assert res1['metrics'][key.split('/', 1)[1]] == value, key


def test_evaluate_maps_workers_identical():
    rng = np.random.default_rng(1)
    maps = [smooth_map(rng) for _ in range(40)]
    boxes = [rescale_boxes(random_boxes(rng, 300, 200), (200, 300), (S, S)) for _ in maps]
    one = evaluate_maps(maps, boxes, workers=1)
    assert evaluate_maps(maps, boxes, workers=2) == one
    assert evaluate_maps(maps, boxes, workers=3) == one
    # the error of the first bad image in input order, whichever thread meets its
    # error first: with 2 threads (chunks of 5 images) #5 fails before #4 is reached
    bad = list(maps)
    bad[4] = np.zeros((3, 3, 3))
    bad[5] = np.zeros((4, 4, 4))
    for workers in (1, 2):
        with pytest.raises(ValueError, match=r'image #4: .*\(3, 3, 3\)'):
            evaluate_maps(bad, boxes, workers=workers)


# ------------------------------------------------------ OpenImages: masks, PxAP
def build_openimages_hand(tmp_path):
    """One 448 x 448 image; masks halve to 224 px (nearest keeps even rows/cols).
    At 224 px: FG rows/cols 0..99 (two instance masks: cols 0..49 and 50..99); the
    ignore box rows/cols 0..149 minus FG is left out (12,500 pixels)."""
    mdir = tmp_path / 'masks' / 'OpenImages' / 'test' / '01x'
    os.makedirs(mdir)
    inst1, inst2, ign = (np.zeros((448, 448), np.uint8) for _ in range(3))
    inst1[:200, :100] = 255
    inst2[:200, 100:200] = 255
    ign[:300, :300] = 255
    for name, m in (('a_m1.png', inst1), ('a_m2.png', inst2), ('a_ignore.png', ign)):
        cv2.imwrite(str(mdir / name), m)
    # map 0.8 on FG rows 0..49 (5000 px), on ignored rows 100..149 (5000 px, not
    # counted) and on BG rows 200..209 (1000 px); 0 elsewhere
    cam = rect_map(((0, 0, 99, 49), 0.8), ((0, 100, 99, 149), 0.8), ((0, 200, 99, 209), 0.8))
    it = dict(id='test/01x/a.jpg', label=2, masks=['test/01x/a_m1.png', 'test/01x/a_m2.png'],
              ignore='test/01x/a_ignore.png')
    save_map(tmp_path / 'maps', it['id'], cam)
    write_split(tmp_path / 'meta', 'OpenImages', 'test', [it], with_sizes=False)
    return cam


def test_openimages_masks_with_ignore_hand_made_pxap(tmp_path, capsys):
    build_openimages_hand(tmp_path)
    res = run(tmp_path, 'OpenImages')
    # PR points from the top: at 0.8 TP 5000, FP 1000 (recall 1/2, precision 5/6);
    # at 0 TP 10000, FP 224^2 - 10000 - 12500 = 27676 (recall 1)
    n_bg = S * S - 10000 - 12500
    expected = 100 * (5 / 6 * 0.5 + 10000 / (10000 + n_bg) * 0.5)
    assert res['metrics']['PxAP'] == pytest.approx(expected, abs=1e-9)
    assert res['localization'] == res['metrics']['PxAP']
    out = capsys.readouterr().out.splitlines()
    assert out[-2] == f'Mask AUC on split test: {res["localization"]}'
    assert out[-1] == f'localization: {res["localization"]}'
    # a perfect map (1 on FG, 0 elsewhere) scores 100
    fg = load_mask(str(tmp_path / 'masks/OpenImages/test/01x/a_m1.png')) | load_mask(
        str(tmp_path / 'masks/OpenImages/test/01x/a_m2.png'))
    assert fg.sum() == 10000 and fg[:100, :100].all()
    save_map(tmp_path / 'maps', 'test/01x/a.jpg', fg.astype(np.float64))
    assert run(tmp_path, 'OpenImages')['localization'] == 100.0


def test_openimages_random_matches_evaluate_maps(tmp_path):
    rng = np.random.default_rng(3)
    items, maps, fgs, igns = [], [], [], []
    mroot = tmp_path / 'masks' / 'OpenImages'
    for i in range(6):
        w, h = int(rng.integers(100, 400)), int(rng.integers(100, 400))
        ids = f'test/c{i % 2}/{i:04d}'
        os.makedirs(mroot / osp.dirname(ids), exist_ok=True)
        inst = []
        for k in range(1 + i % 2):
            m = np.zeros((h, w), np.uint8)
            cv2.ellipse(m, (int(rng.integers(20, w - 20)), int(rng.integers(20, h - 20))),
                        (int(rng.integers(5, w // 3)), int(rng.integers(5, h // 3))),
                        0, 0, 360, 255, -1)
            cv2.imwrite(str(mroot / f'{ids}_m{k}.png'), m)
            inst.append(f'{ids}_m{k}.png')
        ign = np.zeros((h, w), np.uint8)
        ign[: h // 2, : w // 2] = 255
        cv2.imwrite(str(mroot / f'{ids}_ignore.png'), ign)
        it = dict(id=f'{ids}.jpg', label=0, masks=inst, ignore=f'{ids}_ignore.png')
        cam = smooth_map(rng)
        save_map(tmp_path / 'maps', it['id'], cam)
        items.append(it)
        maps.append(cam)
        fg = np.any([load_mask(str(mroot / p)) for p in inst], 0)
        fgs.append(fg)
        igns.append(load_mask(str(mroot / f'{ids}_ignore.png')))
    write_split(tmp_path / 'meta', 'OpenImages', 'test', items, with_sizes=False)
    res = run(tmp_path, 'OpenImages', '--cam_curve_interval', '0.001', workers=2)
    ref = evaluate_maps(maps, [None] * len(maps), gt_masks=fgs, ignore_masks=igns,
                        cam_curve_interval=0.001)
    assert res['metrics']['PxAP'] == ref['wsol/PxAP']
    assert run(tmp_path, 'OpenImages', '--cam_curve_interval', '0.001',
               workers=1)['metrics'] == res['metrics']


# ------------------------------------------------------------------- bad input
def _one_image(tmp_path, cam=None):
    it = dict(id='001.a/X.jpg', label=0, size=(448, 448), boxes=[(40, 40, 239, 239)])
    write_split(tmp_path / 'meta', 'CUB', 'test', [it])
    path = tmp_path / 'maps' / '001.a' / 'X.jpg.npy'
    if cam is not None:
        save_map(tmp_path / 'maps', it['id'], cam)
    return str(path)


def test_error_missing_map_names_the_file(tmp_path):
    path = _one_image(tmp_path)
    with pytest.raises(ScoremapError, match='not found') as err:
        run(tmp_path, 'CUB')
    assert path in str(err.value)


def test_error_nan_map(tmp_path):
    cam = rect_map(((20, 20, 119, 119), 1.0))
    cam[5, 5] = np.nan
    path = _one_image(tmp_path, cam)
    with pytest.raises(ScoremapError, match='NaN') as err:
        run(tmp_path, 'CUB', workers=2)
    assert path in str(err.value)


def test_error_wrong_shape_and_resize_option(tmp_path):
    rng = np.random.default_rng(5)
    small = rng.random((56, 40)) * 3 - 1            # any size, any range
    path = _one_image(tmp_path, small)
    with pytest.raises(ScoremapError, match=r'shape \(56, 40\), expected \(224, 224\)') as err:
        run(tmp_path, 'CUB')
    assert path in str(err.value)
    # --resize_scoremaps: bicubic to 224 + min-max, the reference's inference.py steps
    res = run(tmp_path, 'CUB', '--resize_scoremaps')
    ref = evaluate_maps([small], [np.array([[20, 20, 119, 119]])], eval_size=(S, S))
    assert res['metrics']['MaxBoxAccV2'] == ref['wsol/MaxBoxAccV2']
    assert res['metrics']['best_thr'] == ref['wsol/best_thr']


def test_error_unreadable_and_out_of_range(tmp_path):
    path = _one_image(tmp_path)
    os.makedirs(osp.dirname(path))
    with open(path, 'wb') as f:
        f.write(b'not a numpy file')
    with pytest.raises(ScoremapError, match='cannot read') as err:
        run(tmp_path, 'CUB')
    assert path in str(err.value)
    np.save(path, rect_map(((0, 0, 9, 9), 2.0)))
    with pytest.raises(ScoremapError, match=r'\[0, 1\].*max 2') as err:
        run(tmp_path, 'CUB')
    assert path in str(err.value)


def test_error_predictions_missing_line(tmp_path):
    build_cub_hand(tmp_path)
    pred = tmp_path / 'pred.txt'
    pred.write_text('\n'.join(TOPK_LINES[:-1]) + '\nother/Z.jpg,1\n')
    with pytest.raises(ScoremapError, match=r"1 image id\(s\).*'003.c/E.jpg'"):
        run(tmp_path, 'CUB', '--predictions', str(pred))


def test_cli_prints_and_writes_json(tmp_path, capsys):
    build_cub_hand(tmp_path)
    out = tmp_path / 'res' / 'r.json'
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get('PYTHONPATH', ''))
    proc = subprocess.run(
        [sys.executable, TOOL, '--scoremap_root', str(tmp_path / 'maps'), '--metadata_root',
         str(tmp_path / 'meta'), '--dataset_name', 'CUB', '--split', 'test',
         '--multi_contour_eval', '--multi_iou_eval', '--workers', '2', '--out', str(out)],
        capture_output=True, text=True, env=env, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == 'Loading and evaluating cams.'
    assert lines[-1] == 'localization: 66.66666666666667'
    assert 'MaxBoxAcc per IoU: 30: 60.0, 50: 40.0, 70: 40.0' in lines
    assert '5/5' in proc.stderr                         # the progress bar
    saved = json.loads(out.read_text())
    assert saved['localization'] == pytest.approx(200 / 3)
    assert saved['metrics']['MaxBoxAcc'] == 40.0 and saved['num_images'] == 5
    # a missing map: exit status 2 and the file in the message (in-process: the
    # same entry point as the script's __main__, without a second interpreter)
    os.remove(tmp_path / 'maps' / '001.a' / 'B.jpg.npy')
    assert eval_tool.cli(['--scoremap_root', str(tmp_path / 'maps'), '--metadata_root',
                          str(tmp_path / 'meta'), '--dataset_name', 'CUB', '--split',
                          'test', '--no_progress']) == 2
    assert osp.join(str(tmp_path / 'maps'), '001.a/B.jpg.npy') in capsys.readouterr().err


#: what the tool printed for build_cub_hand + TOPK_LINES before --plot_dir existed
#: (the same command on the commit before it), but Top-5 n/a: the lines of A, B and D
#: carry fewer than 5 classes (it printed Top-5 Loc 40.0, Top-5 Cls 80.0 from them)
HAND_STDOUT = '''Loading and evaluating cams.
MaxBoxAcc (largest contour, IoU 50): 40.0 at CAM threshold 0
MaxBoxAcc per IoU: 30: 60.0, 50: 40.0, 70: 40.0
MaxBoxAccV2 (all contours, mean over IoU): 66.66666666666667
MaxBoxAccV2 per IoU: 30: 80.0, 50: 60.0, 70: 60.0
Top-1 Loc: 20.0 (at the MaxBoxAcc threshold: 20.0)
Top-5 Loc: n/a (some prediction lines carry fewer than 5 classes)
Top-1 Cls: 60.0
Top-5 Cls: n/a (some prediction lines carry fewer than 5 classes)
localization: 40.0
'''


def test_plot_dir_writes_curves_and_tables_and_leaves_stdout_alone(tmp_path, capsys):
    build_cub_hand(tmp_path)
    pred = tmp_path / 'pred.txt'
    pred.write_text('\n'.join(TOPK_LINES) + '\n')
    run(tmp_path, 'CUB', '--predictions', str(pred))
    assert capsys.readouterr().out == HAND_STDOUT
    plots = tmp_path / 'plots'
    res = run(tmp_path, 'CUB', '--predictions', str(pred), '--plot_dir', str(plots))
    captured = capsys.readouterr()
    assert captured.out == HAND_STDOUT
    assert str(plots) in captured.err
    curves = json.loads((plots / 'curves.json').read_text())
    m = res['metrics']
    # the hand-made numbers of test_cub_hand_made_numbers, read off the curves
    assert max(curves['box_acc']['largest']['0.5']) == m['MaxBoxAcc'] == 40.0
    assert [max(curves['box_acc']['all'][k]) for k in ('0.3', '0.5', '0.7')] == [80.0, 60.0,
                                                                                60.0]
    assert curves['best_thr'] == 0.0 and max(curves['top1_loc']) == m['Top1Loc']
    # at threshold 0 boxes hit A, E; classes right B, D, E: A wrong class, B and D wrong
    # box, C both wrong, E correct
    failures = json.loads((plots / 'failures.json').read_text())
    assert failures['counts'] == dict(correct=1, wrong_class=1, wrong_box=2, both_wrong=1)
    assert failures['percent']['correct'] == m['Top1Loc@best_thr']
    rows = (plots / 'per_class.csv').read_text().splitlines()
    assert rows[-1].startswith('-1,all,5,40.0,20.0,60.0')
    assert cv2.imread(str(plots / 'curves.png')) is not None
    # the per-image file of the same run: each image's kind and box at threshold 0
    header, lines = read_per_image_results(str(plots / 'per_image.jsonl'))
    assert header['cam_threshold'] == 0.0 and header['num_images'] == 5
    assert {ln['img_id']: ln['kind'] for ln in lines} == {
        '001.a/A.jpg': 'wrong_class', '001.a/B.jpg': 'wrong_box', '002.b/C.jpg': 'both_wrong',
        '002.b/D.jpg': 'wrong_box', '003.c/E.jpg': 'correct'}
    a = next(ln for ln in lines if ln['img_id'] == '001.a/A.jpg')
    assert a['pred_box'] == [20, 20, 120, 120] and a['gt_boxes'] == [[20, 20, 119, 119]]
