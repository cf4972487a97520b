"""An on-disk store of pseudo-label CAMs keyed by image id.

Each CAM is min-max normalised to [0, 1], resized (area interpolation) to a fixed
``resolution`` x ``resolution`` grid covering the whole original image, and quantised
to uint8: 64 x 64 -> 4096 bytes per image (5.2 GB for the 1.28 M ILSVRC training
images). Min-max normalisation loses nothing the pseudo-label sampler uses (Otsu and
top/bottom-n ranks are invariant to increasing affine maps); a constant CAM is stored as
all zeros.

Directory layout::

    store/meta.json           {"resolution": R, "version": 1}
    store/<shard>.u8          rows of R*R uint8, appended
    store/<shard>.ids         one image id per line; line i names row i

Each writer process appends to its own shard, so several processes write one store
without locks. A row is written and flushed before its id line (the index is written
last), and a reader only trusts rows that have both their bytes and a complete id
line, so a writer killed at any point (SIGKILL included: flushed bytes are in the
OS's page cache) leaves at most an orphan row and a partial id line, which the next
writer of that shard truncates (resumable generation; ``tests/test_pseudo_labels/test_cam_resume.py``
kills ``tools/generate_cams.py`` between a row and its id line). ``meta.json`` is
written to a temporary file and renamed (atomic). Files are not ``fsync``-ed: a
killed process loses nothing flushed, a power loss may lose the last rows (the
resumed run recomputes them).
Readers ``np.memmap`` the shards (no copy; the OS page cache is shared by dataloader
workers) and look ids up in a sorted NumPy bytes array (``searchsorted``), about 60 B
per image of index memory instead of a Python dict's ~200 B.
"""
import json
import os
import os.path as osp
from typing import Dict, Iterable, List, Optional, Tuple

import cv2
import numpy as np

META_FILE = 'meta.json'
VERSION = 1


def quantize_cam(cam: np.ndarray, resolution: int, img_id: str = '?') -> np.ndarray:
    """Float CAM (H, W), any range -> uint8 (resolution, resolution).

    Raises ValueError (naming ``img_id``) if the CAM has non-finite values.
    """
    cam = np.asarray(cam, dtype=np.float32)
    if cam.ndim != 2:
        raise ValueError(f'CAM of {img_id!r} must be 2-D (H, W), got {cam.shape}')
    if not np.isfinite(cam).all():
        raise ValueError(f'CAM of {img_id!r} has non-finite values')
    lo, hi = float(cam.min()), float(cam.max())
    if hi - lo <= 1e-12 * max(1.0, abs(hi)):
        return np.zeros((resolution, resolution), np.uint8)
    cam = (cam - lo) / (hi - lo)
    if cam.shape != (resolution, resolution):
        interp = cv2.INTER_AREA if min(cam.shape) >= resolution else cv2.INTER_LINEAR
        cam = cv2.resize(cam, (resolution, resolution), interpolation=interp)
    return np.clip(np.rint(cam * 255.0), 0, 255).astype(np.uint8)


def _read_ids(path: str) -> List[str]:
    with open(path, 'rb') as f:
        data = f.read()
    lines = data.split(b'\n')
    # the last element is b'' after a complete final line, else a partial id
    return [line.decode('utf-8') for line in lines[:-1]]


def _check_id(img_id: str):
    if not img_id or '\n' in img_id or '\r' in img_id:
        raise ValueError(f'invalid image id for the CAM store: {img_id!r}')


def _read_meta(root: str) -> dict:
    path = osp.join(root, META_FILE)
    if not osp.isfile(path):
        raise FileNotFoundError(f'not a CAM store (no {META_FILE}): {root}')
    with open(path) as f:
        return json.load(f)


class CAMStoreWriter:
    """Appends CAMs to one shard of a store (created if needed).

    Args:
        root (str): store directory.
        shard (str): this writer's shard name; use one name per concurrent process.
        resolution (int): side of the stored grid; must match an existing store.
    """

    def __init__(self, root: str, shard: str = 'part-0', resolution: int = 64):
        if not shard or '/' in shard or shard.startswith('.'):
            raise ValueError(f'invalid shard name {shard!r}')
        os.makedirs(root, exist_ok=True)
        meta_path = osp.join(root, META_FILE)
        if osp.isfile(meta_path):
            meta = _read_meta(root)
            if meta['resolution'] != resolution:
                raise ValueError(f'CAM store {root} has resolution {meta["resolution"]}, '
                                 f'this writer was asked for {resolution}')
        else:
            tmp = f'{meta_path}.{os.getpid()}.tmp'
            with open(tmp, 'w') as f:
                json.dump(dict(resolution=resolution, version=VERSION), f)
            os.replace(tmp, meta_path)  # atomic: concurrent creators agree
        self.root, self.shard, self.resolution = root, shard, resolution
        self.row_bytes = resolution * resolution
        data_path = osp.join(root, shard + '.u8')
        ids_path = osp.join(root, shard + '.ids')
        ids = _read_ids(ids_path) if osp.isfile(ids_path) else []
        # An interrupted writer leaves at most a partial id line and an orphan (or
        # partial) row: keep the rows that have both their bytes and their id line.
        # min(): never extend the data file with zero rows for ids whose bytes are
        # missing (truncate() past the end pads with zeros).
        n_rows = osp.getsize(data_path) // self.row_bytes if osp.isfile(data_path) else 0
        ids = ids[:n_rows]
        with open(ids_path, 'ab') as f:
            f.truncate(sum(len(i.encode('utf-8')) + 1 for i in ids))
        with open(data_path, 'ab') as f:
            f.truncate(len(ids) * self.row_bytes)
        self._data = open(data_path, 'ab')
        self._ids = open(ids_path, 'ab')
        self.num_rows = len(ids)

    def write(self, img_id: str, cam: np.ndarray):
        """Quantise and append one float CAM (H, W) of the whole image."""
        _check_id(img_id)
        row = quantize_cam(cam, self.resolution, img_id)
        self._data.write(row.tobytes())
        self._data.flush()
        self._ids.write(img_id.encode('utf-8') + b'\n')
        self._ids.flush()
        self.num_rows += 1

    def close(self):
        self._data.close()
        self._ids.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class CAMStore:
    """Read-only view of every shard of a store.

    ``store[img_id]`` gives the uint8 (R, R) CAM; ``store.get_float(img_id)`` the
    float32 CAM in [0, 1]. A missing id raises ``KeyError`` naming the id and store.
    Shards written after construction are not seen; call :meth:`reload`.
    """

    def __init__(self, root: str):
        self.root = root
        self.reload()

    def reload(self):
        meta = _read_meta(self.root)
        self.resolution = int(meta['resolution'])
        r = self.resolution
        self._shards: List[np.ndarray] = []
        keys, shard_idx, rows = [], [], []
        for name in sorted(os.listdir(self.root)):
            if not name.endswith('.ids'):
                continue
            ids = _read_ids(osp.join(self.root, name))
            data_path = osp.join(self.root, name[:-4] + '.u8')
            n_full = osp.getsize(data_path) // (r * r) if osp.isfile(data_path) else 0
            ids = ids[:n_full]
            if ids:
                self._shards.append(np.memmap(data_path, np.uint8, 'r', shape=(len(ids), r, r)))
                keys.extend(i.encode('utf-8') for i in ids)
                shard_idx.append(np.full(len(ids), len(self._shards) - 1, np.int32))
                rows.append(np.arange(len(ids), dtype=np.int64))
        keys = np.array(keys, dtype=bytes) if keys else np.zeros(0, 'S1')
        order = np.argsort(keys, kind='stable')
        self._keys = keys[order]
        self._shard_idx = np.concatenate(shard_idx)[order] if shard_idx else np.zeros(0, np.int32)
        self._rows = np.concatenate(rows)[order] if rows else np.zeros(0, np.int64)
        dup = np.flatnonzero(self._keys[1:] == self._keys[:-1])
        if dup.size:
            raise ValueError(f'CAM store {self.root}: image id '
                             f'{self._keys[dup[0]].decode()!r} is stored more than once')

    def _find(self, img_id: str) -> Optional[Tuple[int, int]]:
        key = img_id.encode('utf-8')
        i = int(np.searchsorted(self._keys, key))
        if i < len(self._keys) and self._keys[i] == key:
            return int(self._shard_idx[i]), int(self._rows[i])
        return None

    def __contains__(self, img_id: str) -> bool:
        return self._find(img_id) is not None

    def __len__(self) -> int:
        return len(self._keys)

    def __getitem__(self, img_id: str) -> np.ndarray:
        loc = self._find(img_id)
        if loc is None:
            raise KeyError(f'no CAM for image id {img_id!r} in the CAM store {self.root} '
                           f'({len(self)} CAMs); generate it with tools/generate_cams.py')
        return np.array(self._shards[loc[0]][loc[1]])

    def get_float(self, img_id: str) -> np.ndarray:
        return self[img_id].astype(np.float32) / 255.0

    def ids(self) -> Iterable[str]:
        return (k.decode('utf-8') for k in self._keys)


_OPEN_STORES: Dict[str, CAMStore] = {}


def open_cam_store(root: str) -> CAMStore:
    """A per-process cached :class:`CAMStore` (one index per dataloader worker)."""
    key = osp.abspath(root)
    if key not in _OPEN_STORES:
        _OPEN_STORES[key] = CAMStore(root)
    return _OPEN_STORES[key]
