"""Checkpoint files for the safe-loading tests: payloads that would run code when
unpickled (they write a harmless marker file), and real Runner checkpoints of the tiny
classifier (tests/data/configs/tiny_classifier.py) trained in this process."""
import copy
import io
import os
import os.path as osp
import zipfile

import torch

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CLASSIFIER = osp.join(ROOT, 'tests/data/configs/tiny_classifier.py')


class WritesMarker:
    """Unpickled, calls ``exec`` with code that writes ``marker`` (``builtins.exec`` in
    the pickle: a global torch does not block by module)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f'open({self.marker!r}, "w").write("unpickled")', )


class TouchesMarker:
    """Unpickled, runs the shell command ``touch marker`` (``posix.system``)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f'touch {self.marker}', )


def with_payload(obj: dict, payload) -> dict:
    """A copy of checkpoint ``obj`` with ``payload`` in its meta (where a tampered file
    would hide it: nothing reads that key)."""
    out = copy.copy(obj)
    out['meta'] = dict(obj.get('meta') or {}, note=payload)
    return out


def rename_globals(src: str, dst: str, renames: dict) -> None:
    """Copy a torch.save zip, renaming pickled globals (``'module\\nname'`` byte strings,
    as protocol 2 writes them) in its data.pkl: e.g. NumPy 2's
    ``numpy._core.multiarray`` to the ``numpy.core.multiarray`` NumPy 1 writes."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, 'w', zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if info.filename.endswith('/data.pkl'):
                for old, new in renames.items():
                    assert old.encode() in data, old
                    data = data.replace(old.encode(), new.encode())
            zout.writestr(info, data)


def legacy_bytes(obj) -> bytes:
    """``obj`` in torch's legacy (non-zip, torch < 1.6) format."""
    buf = io.BytesIO()
    torch.save(obj, buf, _use_new_zipfile_serialization=False)
    return buf.getvalue()


def make_folder_dataset(root):
    from tiny_classifier_runs import _make_folder_dataset
    _make_folder_dataset(root)
    return root


def train_tiny_classifier(work_dir: str, data_root: str, **overrides) -> str:
    """Train tiny_classifier through MMEngine's Runner (config keys overridden by
    ``overrides``); returns the work dir with its checkpoints."""
    from mmengine.config import Config
    from mmengine.runner import Runner
    cfg = Config.fromfile(CLASSIFIER)
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[key].dataset.data_root = data_root
    for key, value in overrides.items():
        cfg[key] = value
    cfg.work_dir = work_dir
    cfg.experiment_name = work_dir.strip(os.sep).replace(os.sep, '_')  # unique instances
    Runner.from_cfg(cfg).train()
    return work_dir
