"""The CAM generation loop: images of a WSOL split -> CAM store (batched, resumable,
sharded over processes)."""
import os
from typing import Callable, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch
from mmengine.logging import MMLogger
from torch.utils.data import DataLoader, Dataset

from .cam_store import CAMStore, CAMStoreWriter, META_FILE


class _ImageList(Dataset):
    """(img_id, img_path, label) -> uint8 BGR tensor (3, S, S) of the whole image."""

    def __init__(self, items: Sequence[Tuple[str, str, int]], input_size: int):
        self.items, self.input_size = list(items), input_size

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        img_id, path, label = self.items[i]
        img = cv2.imread(path, cv2.IMREAD_COLOR)
        if img is None:
            raise OSError(f'cannot read image {path} (id {img_id!r})')
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


def pending_items(items: Sequence[Tuple[str, str, int]], store_root: str, shard: int,
                  num_shards: int) -> List[Tuple[str, str, int]]:
    """This shard's items (every ``num_shards``-th, from ``shard``) not yet stored."""
    mine = list(items)[shard::num_shards]
    if not os.path.isfile(os.path.join(store_root, META_FILE)):
        return mine
    store = CAMStore(store_root)
    return [it for it in mine if it[0] not in store]


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
    todo = pending_items(items, store_root, i, n)
    logger = MMLogger.get_current_instance()
    logger.info(f'CAM store {store_root}: shard {i}/{n} has {len(todo)} image(s) to do '
                f'of {len(list(items)[i::n])}')
    if not todo:
        return 0
    loader = DataLoader(_ImageList(todo, input_size), batch_size=batch_size,
                        num_workers=num_workers, shuffle=False)
    written = 0
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=len(todo), desc=f'CAMs {i}/{n}', unit='img')
    with CAMStoreWriter(store_root, f'part-{i}-of-{n}', resolution) as writer:
        for ids, imgs, labels in loader:
            x = preprocess(imgs.to(device))
            cams = cam_fn(x, [int(y) for y in labels])
            if cams.shape != (len(ids), input_size, input_size):
                raise RuntimeError(f'CAM generator returned {cams.shape}, expected '
                                   f'{(len(ids), input_size, input_size)}')
            for img_id, cam in zip(ids, cams):
                writer.write(img_id, cam)  # ValueError naming the id if non-finite
            written += len(ids)
            if bar is not None:
                bar.update(len(ids))
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
