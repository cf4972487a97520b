"""Class-text embeddings from an open_clip text tower loaded from a local file."""
import os.path as osp
import warnings
from typing import List, Optional

import torch
import torch.nn.functional as F

RANDOM_INIT_WARNING = (
    '\n' + '!' * 78 + '\n'
    'RANDOM-INITIALISED TEXT TOWER: these anchors carry NO language semantics. They are\n'
    'only good for offline demos and tests; results trained on them mean nothing.\n'
    + '!' * 78)


def load_text_model(model_name: str, checkpoint: Optional[str] = None,
                    random_init: bool = False, seed: int = 0):
    """An open_clip model (for its text tower) and its tokenizer, without network.

    Args:
        model_name: open_clip architecture name, e.g. ``'ViT-L-14'``.
        checkpoint: local open_clip checkpoint file (required unless random_init).
        random_init: allow random weights (warns loudly).
        seed: seed of the random weights (``random_init`` only), so that a rerun of
            the demo builds the same anchors.
    """
    import open_clip  # after `import tedloc_mm` (torchvision workaround)
    if model_name not in open_clip.list_models():
        raise ValueError(f'unknown open_clip model {model_name!r}')
    if checkpoint is None:
        if not random_init:
            raise ValueError('a local open_clip checkpoint is required (--checkpoint); '
                             'nothing is downloaded. For an offline demo only, pass '
                             '--random-init to use random weights.')
        warnings.warn(RANDOM_INIT_WARNING, stacklevel=2)
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            model = open_clip.create_model(model_name, pretrained=None)
    else:
        if not osp.isfile(checkpoint):
            raise FileNotFoundError(f'open_clip checkpoint {checkpoint!r} does not exist '
                                    f'(a local file is needed; nothing is downloaded)')
        model = open_clip.create_model(model_name, pretrained=checkpoint)
    model.eval()
    return model, open_clip.get_tokenizer(model_name)


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
