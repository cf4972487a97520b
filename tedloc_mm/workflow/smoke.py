"""The inputs of ``tools/reproduce_paper.py --smoke DIR``: a dry run of the whole CUB chain
on CPU with **the paper config's model unchanged** (EVA-01-L/14, CLIP-ES with a ViT-B/16,
the ViT-L-14 text tower, K = 200, d = 768).

Made here, offline, in the real formats:

* ``DIR/inputs/CUB_200_2011``: a CUB-200-2011 release layout (the five text files, 200
  classes, ``images/<class folder>/<file>.jpg``) with :data:`SMOKE_IMAGES` images of
  the first classes, drawn here (a filled ellipse on noise; its box is the ellipse's);
* ``DIR/inputs/eva_large_patch14_196.safetensors``: random EVA-01-L weights as timm
  publishes them;
* ``DIR/inputs/ViT-B-16.pt``: a random OpenAI-style TorchScript archive of ViT-B/16;
* ``DIR/inputs/open_clip_<text model>.bin``: a random open_clip checkpoint of the
  config's text tower.

Only the batch (2), the schedule (2 epochs of 1 iteration, validated after each, so that
the best checkpoint is really chosen between two validations), the loaders' workers and
the split sizes (2 / 2 / 2 images) shrink; the driver prints so. The files are made once
(a step of the driver's, ``DIR/work/steps/smoke_inputs.json``) and reused.
"""
import os
import os.path as osp
import sys

import numpy as np

__all__ = ['SMOKE_OPTIONS', 'SMOKE_IMAGES', 'write_smoke_cub', 'prepare_smoke']

#: images of the first classes: (class index 1-based, is_train) -> count
SMOKE_IMAGES = {(1, 1): 2, (1, 0): 1, (2, 1): 2, (2, 0): 1}
#: what --smoke shrinks, set by name (the model is the config's)
SMOKE_OPTIONS = [
    'train_dataloader.batch_size=2', 'val_dataloader.batch_size=2',
    'test_dataloader.batch_size=2', 'train_cfg.max_epochs=2', 'train_cfg.val_interval=1',
    'default_hooks.logger.interval=1',
    *[f'{loader}.{k}' for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader')
      for k in ('num_workers=0', 'persistent_workers=False')],
]


def write_smoke_cub(root: str, seed: int = 0) -> None:
    """A CUB-200-2011 release layout under ``root`` with the images of SMOKE_IMAGES."""
    import cv2

    from tedloc_mm.clip import builtin_class_names
    rng = np.random.default_rng(seed)
    names = builtin_class_names('cub')
    folders = [f'{k + 1:03d}.{n.replace(" ", "_")}' for k, n in enumerate(names)]
    rows = []
    for (label, is_train), count in SMOKE_IMAGES.items():
        for _ in range(count):
            rows.append((label, is_train))
    with open(osp.join(_mkdir(root), 'classes.txt'), 'w') as f:
        f.writelines(f'{k + 1} {name}\n' for k, name in enumerate(folders))
    files = {n: open(osp.join(root, n), 'w') for n in (
        'images.txt', 'image_class_labels.txt', 'bounding_boxes.txt', 'train_test_split.txt')}
    try:
        for i, (label, is_train) in enumerate(rows, 1):
            h, w = int(rng.integers(180, 260)), int(rng.integers(200, 300))
            img = rng.integers(0, 90, (h, w, 3)).astype(np.uint8)
            cx, cy = int(rng.integers(w // 3, 2 * w // 3)), int(rng.integers(h // 3, 2 * h // 3))
            ax, ay = int(rng.integers(20, w // 4)), int(rng.integers(20, h // 4))
            colour = [int(c) for c in rng.integers(120, 255, 3)]
            cv2.ellipse(img, (cx, cy), (ax, ay), 0, 0, 360, colour, -1)
            rel = f'{folders[label - 1]}/smoke_{i:04d}.jpg'
            cv2.imwrite(osp.join(_mkdir(osp.join(root, 'images', folders[label - 1])),
                                 osp.basename(rel)), img)
            files['images.txt'].write(f'{i} {rel}\n')
            files['image_class_labels.txt'].write(f'{i} {label}\n')
            files['bounding_boxes.txt'].write(f'{i} {cx - ax}.0 {cy - ay}.0 {2 * ax}.0 '
                                              f'{2 * ay}.0\n')
            files['train_test_split.txt'].write(f'{i} {is_train}\n')
    finally:
        for f in files.values():
            f.close()


def _mkdir(d: str) -> str:
    os.makedirs(d, exist_ok=True)
    return d


def smoke_input_paths(inputs: str, text_model: str) -> dict:
    return dict(data_root=osp.join(inputs, 'CUB_200_2011'),
                eva_checkpoint=osp.join(inputs, 'eva_large_patch14_196.safetensors'),
                clip_checkpoint=osp.join(inputs, 'ViT-B-16.pt'),
                text_checkpoint=osp.join(inputs, f'open_clip_{text_model}.bin'))


def write_smoke_inputs(inputs: str, text_model: str) -> dict:
    """The smoke inputs under ``inputs`` (see the module's docstring); their paths."""
    from tedloc_mm.clip.checkpoint import write_random_clip_file
    from tedloc_mm.models.utils.eva_checkpoint import write_random_timm_eva_file
    paths = smoke_input_paths(inputs, text_model)
    write_smoke_cub(paths['data_root'])
    write_random_timm_eva_file(paths['eva_checkpoint'], 'eva_large_patch14_196')
    write_random_clip_file(paths['clip_checkpoint'], 'ViT-B-16', openai_archive=True)
    write_random_clip_file(paths['text_checkpoint'], text_model, openai_archive=False)
    return paths


def prepare_smoke(args, repo: str):
    """Make the smoke inputs under ``args.smoke`` (once) and return ``args`` set to use
    them: CUB, the paper config, val carved from train (1 per class), the shrink options."""
    from mmengine.config import Config
    config = args.config or 'configs/tedloc_eva-l_cub.py'
    text_model = Config.fromfile(osp.join(repo, config)).anchor_text['model']
    inputs = _mkdir(osp.join(osp.abspath(args.smoke), 'inputs'))
    paths = smoke_input_paths(inputs, text_model)
    # made in a child process, once (a step of its own: timed, skipped when done), so
    # that the driver stays small (a child's peak memory counts the driver's)
    from tedloc_mm.workflow.steps import StepRunner
    work = osp.join(osp.abspath(args.smoke), 'work')
    StepRunner(osp.join(work, 'steps'), repo).run(
        'smoke_inputs', 'smoke: random-weight files in the real formats, a small CUB layout',
        [sys.executable, '-m', 'tedloc_mm.workflow.smoke', inputs, text_model],
        list(paths.values()), where='0/6')
    for k, v in paths.items():
        setattr(args, k, v)
    args.dataset, args.config, args.gpus = 'cub', config, 1
    args.val_per_class, args.val_metadata = 1, None
    args.work_dir = work
    args.device = args.device or 'cpu'
    args.cfg_options = SMOKE_OPTIONS + list(args.cfg_options)
    n = {s: sum(c for (_, t), c in SMOKE_IMAGES.items() if t == s) for s in (0, 1)}
    print(f'SMOKE RUN ({config}, model unchanged: {text_model} text tower, random weights): '
          f'only these shrink: splits train {n[1] - 2} / val 2 / test {n[0]} images, '
          + ', '.join(SMOKE_OPTIONS[:5]) + ', no loader workers. Its numbers mean nothing.',
          flush=True)
    return args


if __name__ == '__main__':  # python -m tedloc_mm.workflow.smoke INPUTS TEXT_MODEL
    # (running this module imported tedloc_mm first: compat before timm / open_clip)
    write_smoke_inputs(sys.argv[1], sys.argv[2])
