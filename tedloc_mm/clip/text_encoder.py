"""Class-text embeddings from an open_clip text tower loaded from a local file."""
from typing import List, Optional

import torch
import torch.nn.functional as F

from .checkpoint import load_clip

RANDOM_INIT_WARNING = (
    '\n' + '!' * 78 + '\n'
    'RANDOM-INITIALISED TEXT TOWER: these anchors carry NO language semantics. They are\n'
    'only good for offline demos and tests; results trained on them mean nothing.\n'
    + '!' * 78)


def load_text_model(model_name: str, checkpoint: Optional[str] = None,
                    random_init: bool = False, seed: int = 0):
    """A CLIP model (for its text tower) and its tokenizer, without network.

    Args:
        model_name: open_clip architecture name, e.g. ``'ViT-L-14'``.
        checkpoint: local file: an OpenAI CLIP TorchScript archive (``ViT-B-16.pt``) or
            an open_clip checkpoint (required unless random_init); see
            :mod:`tedloc_mm.clip.checkpoint`.
        random_init: allow random weights (warns loudly).
        seed: seed of the random weights (``random_init`` only), so that a rerun of
            the demo builds the same anchors.
    """
    return load_clip(model_name, checkpoint, random_init=random_init, seed=seed,
                     random_init_warning=RANDOM_INIT_WARNING)


@torch.no_grad()
def encode_class_names(model, tokenizer, class_names: List[str], templates: List[str],
                       batch_size: int = 256) -> torch.Tensor:
    """(K, d) float32 anchors: per class, the mean over templates of the L2-normalised
    text embeddings, L2-normalised again (CLIP's prompt ensembling)."""
    prompts = [t.format(name) for name in class_names for t in templates]
    feats = []
    for i in range(0, len(prompts), batch_size):
        feats.append(F.normalize(model.encode_text(tokenizer(prompts[i:i + batch_size])).float(),
                                 dim=-1))
    feats = torch.cat(feats).view(len(class_names), len(templates), -1)
    return F.normalize(feats.mean(dim=1), dim=-1)
