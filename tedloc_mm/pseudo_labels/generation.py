"""The CAM generation loop: images of a WSOL split -> CAM store (batched, resumable,
sharded over processes)."""
import os
from typing import Callable, Container, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch
from mmengine.logging import MMLogger
from torch.utils.data import DataLoader, Dataset

from tedloc_mm.fileio.image_io import read_image
from tedloc_mm.fileio.cam_store import CAMStore, CAMStoreWriter, META_FILE


def default_num_workers(cpus: Optional[int] = None) -> int:
    """Image-loading worker processes for ``tools/generate_cams.py``: one core is left
    to the main process (it runs the model), at most 2 workers (decoding and resizing
    one image costs far less than its Grad-CAM), none on a 1-core machine:
    ``min(2, cpus - 1)``. ``cpus``: default the cores this process may use."""
    if cpus is None:
        cpus = (len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity')
                else os.cpu_count() or 1)
    return max(0, min(2, cpus - 1))


class _ImageList(Dataset):
    """(img_id, img_path, label) -> uint8 BGR tensor (3, S, S) of the whole image."""

    def __init__(self, items: Sequence[Tuple[str, str, int]], input_size: int):
        self.items, self.input_size = list(items), input_size

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        img_id, path, label = self.items[i]
        img = read_image(path, img_id)  # ImageReadError naming file and id
        img = cv2.resize(img, (self.input_size, self.input_size),
                         interpolation=cv2.INTER_LINEAR)
        return img_id, torch.from_numpy(img).permute(2, 0, 1).contiguous(), label


def parse_shard(shard: Optional[str]) -> Tuple[int, int]:
    """``'i/n'`` -> (i, n); ``None`` -> torchrun's (RANK, WORLD_SIZE) or (0, 1)."""
    if shard is None:
        return int(os.environ.get('RANK', 0)), int(os.environ.get('WORLD_SIZE', 1))
    try:
        i, n = (int(v) for v in shard.split('/'))
    except ValueError:
        raise ValueError(f'--shard must be i/n, got {shard!r}') from None
    if not 0 <= i < n:
        raise ValueError(f'--shard {shard}: need 0 <= i < n')
    return i, n


def _stored_ids(store_root: str) -> Container[str]:
    """The ids already in the store (a :class:`CAMStore`: ~60 B per id, not a set's
    ~100 B), or an empty set if there is no store yet."""
    if not os.path.isfile(os.path.join(store_root, META_FILE)):
        return frozenset()
    return CAMStore(store_root)


def pending_batches(items: Sequence[Tuple[str, str, int]], stored: Container[str],
                    batch_size: int) -> List[Tuple[str, str, int]]:
    """The batches of ``items`` (consecutive chunks of ``batch_size``) that hold an
    item not in ``stored``, concatenated.

    A resumed run recomputes the whole batch a killed run was in the middle of, so
    every CAM is computed in the same batch as in an uninterrupted run: batched
    kernels may round differently for other batch compositions, and a resumed store
    is then byte-identical to an uninterrupted one (``tests/test_pseudo_labels/test_cam_resume.py``).
    """
    items = list(items)
    out = []
    for start in range(0, len(items), batch_size):
        chunk = items[start:start + batch_size]
        if any(it[0] not in stored for it in chunk):
            out.extend(chunk)
    return out


def generate_cams(cam_fn: Callable[[torch.Tensor, Sequence[int]], np.ndarray],
                  preprocess: Callable[[torch.Tensor], torch.Tensor],
                  items: Sequence[Tuple[str, str, int]],
                  store_root: str,
                  input_size: int = 224,
                  resolution: int = 64,
                  batch_size: int = 16,
                  shard: Tuple[int, int] = (0, 1),
                  num_workers: int = 0,
                  device: str = 'cpu',
                  progress: bool = True) -> int:
    """Compute and store the CAM of every pending item; return how many were written.

    Args:
        cam_fn: (normalised float images (B, 3, S, S) on ``device``, labels) ->
            CAMs (B, S, S) covering the whole image.
        preprocess: uint8 BGR batch (B, 3, S, S) on ``device`` -> normalised input.
        items: (img_id, img_path, label) of the split, in a fixed order.
        shard: (i, n): this process handles items i, i+n, ... and writes shard
            ``part-i-of-n`` of the store.
    """
    i, n = shard
    mine = list(items)[i::n]
    stored = _stored_ids(store_root)
    n_todo = sum(it[0] not in stored for it in mine)
    logger = MMLogger.get_current_instance()
    logger.info(f'CAM store {store_root}: shard {i}/{n} has {n_todo} image(s) to do '
                f'of {len(mine)}')
    if not n_todo:
        return 0
    batches = pending_batches(mine, stored, batch_size)
    loader = DataLoader(_ImageList(batches, input_size), batch_size=batch_size,
                        num_workers=num_workers, shuffle=False)
    written = 0
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=n_todo, desc=f'CAMs {i}/{n}', unit='img')
    with CAMStoreWriter(store_root, f'part-{i}-of-{n}', resolution) as writer:
        for ids, imgs, labels in loader:
            x = preprocess(imgs.to(device))
            cams = cam_fn(x, [int(y) for y in labels])
            if cams.shape != (len(ids), input_size, input_size):
                raise RuntimeError(f'CAM generator returned {cams.shape}, expected '
                                   f'{(len(ids), input_size, input_size)}')
            new = [(img_id, cam) for img_id, cam in zip(ids, cams) if img_id not in stored]
            for img_id, cam in new:
                writer.write(img_id, cam)  # ValueError naming the id if non-finite
            written += len(new)
            if bar is not None:
                bar.update(len(new))
    if bar is not None:
        bar.close()
    return written


def clip_preprocess(mean: Sequence[float], std: Sequence[float]) -> Callable:
    """uint8 BGR (B, 3, S, S) -> CLIP-normalised RGB float."""

    def fn(imgs: torch.Tensor) -> torch.Tensor:
        x = imgs.flip(1).float() / 255.0
        m = torch.tensor(mean, device=x.device).view(1, 3, 1, 1)
        s = torch.tensor(std, device=x.device).view(1, 3, 1, 1)
        return (x - m) / s

    return fn


def mmpretrain_preprocess(model) -> Callable:
    """uint8 BGR (B, 3, S, S) -> the classifier's own ``data_preprocessor`` output
    (mean / std and BGR -> RGB as its config says)."""

    def fn(imgs: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return model.data_preprocessor(dict(inputs=imgs), False)['inputs']

    return fn
