"""The anchor file: class-text embeddings that become TeD-Loc's class anchors.

Format (version 1): a ``torch.save``-d dict, loadable with ``weights_only=True``:

``embeddings``      FloatTensor (K, d), float32: row k is the text embedding of class
                    k, the mean over prompt templates of L2-normalised open_clip text
                    embeddings, L2-normalised again. *Not* orthogonalised: the head
                    does that (``orthogonalization='qr' | 'svd' | 'none'``), so the
                    paper's ablation is one config value.
``class_names``     list[str] of length K, in class-index order.
``model_name``      str: the open_clip architecture (e.g. ``'ViT-L-14'``).
``pretrained``      str: the local checkpoint file the tower was loaded from, or
                    ``'random-init'`` (demo only: such anchors carry no semantics).
``templates``       list[str]: the prompt templates, ``{}`` standing for the name.
``format_version``  int: 1.

Build one with ``tools/build_text_anchors.py``.
"""
import os
import os.path as osp
from typing import Dict, List, Optional

import torch

FORMAT_VERSION = 1
RANDOM_INIT = 'random-init'
BUILD_HINT = ('Build one with tools/build_text_anchors.py, e.g. `python '
              'tools/build_text_anchors.py --classes cub --model ViT-L-14 --checkpoint '
              '/path/to/open_clip_vit_l14.bin --out anchors/cub_vit-l-14.pth`.')


def save_anchor_file(path: str, embeddings: torch.Tensor, class_names: List[str],
                     model_name: str, pretrained: str, templates: List[str]) -> None:
    """Write an anchor file (format above); checks shapes and lengths first."""
    emb = torch.as_tensor(embeddings).detach().to('cpu', torch.float32).contiguous()
    _check(emb, list(class_names), path)
    d = osp.dirname(osp.abspath(path))
    if d:
        os.makedirs(d, exist_ok=True)
    torch.save(dict(embeddings=emb, class_names=list(class_names), model_name=str(model_name),
                    pretrained=str(pretrained), templates=list(templates),
                    format_version=FORMAT_VERSION), path)


def load_anchor_file(path: str, num_classes: Optional[int] = None) -> Dict:
    """Read and validate an anchor file; ``num_classes`` (K) is checked if given."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'anchor file {path!r} does not exist. {BUILD_HINT}')
    # weights_only=True; errors name the file (damaged, or needing code to unpickle)
    from .checkpoint import load_local_checkpoint
    obj = load_local_checkpoint(path, map_location='cpu')
    if not isinstance(obj, dict) or 'embeddings' not in obj or 'class_names' not in obj:
        raise ValueError(f'{path!r} is not an anchor file (a dict with "embeddings" and '
                         f'"class_names" expected). {BUILD_HINT}')
    emb = obj['embeddings'].to(torch.float32)
    _check(emb, obj['class_names'], path)
    if num_classes is not None and emb.shape[0] != num_classes:
        raise ValueError(f'anchor file {path!r} has K={emb.shape[0]} classes, the model '
                         f'is configured for num_classes={num_classes}')
    obj['embeddings'] = emb
    return obj


def _check(emb: torch.Tensor, class_names: List[str], path: str) -> None:
    if emb.dim() != 2:
        raise ValueError(f'{path}: embeddings must be (K, d), got {tuple(emb.shape)}')
    if len(class_names) != emb.shape[0]:
        raise ValueError(f'{path}: {len(class_names)} class names for {emb.shape[0]} '
                         f'embeddings')
    if not torch.isfinite(emb).all():
        raise ValueError(f'{path}: embeddings contain NaN or inf')
