"""Checkpoints without the frozen backbone (opt-in).

A TeD-Loc checkpoint holds the frozen EVA backbone next to the few million trained
weights: about 1.2 GB per file for EVA-02-L, against about 26 MB without it (half of it
SGD momentum). With ``custom_hooks = [dict(type='LeanCheckpointHook')]`` the Runner
saves checkpoints without the frozen submodule (``backbone.`` by default) and,
whenever it loads one (``load_from``, ``--resume``, ``tools/test.py``), first fills
the weights back in from the file they came from, ``model.backbone.checkpoint``.
:func:`tedloc_mm.apis.init_localizer` does the same for lean checkpoints.

The trade-off: testing or resuming a lean checkpoint needs that local backbone file.
A fingerprint of the dropped weights (float64 sum and sum of squares per tensor,
added up) is saved with the checkpoint; loading refuses a backbone file whose
weights do not match it, so a different file cannot silently change the results.
"""
import os.path as osp
from typing import Optional

import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from tedloc_mm.registry import HOOKS

#: where the lean checkpoint's record lives: ``checkpoint['meta'][META_KEY]``
META_KEY = 'lean_checkpoint'


def _fingerprint(state: dict) -> list:
    """[sum, sum of squares] over the tensors of ``state``, in float64."""
    total, squares = 0.0, 0.0
    for value in state.values():
        v = value.detach().double()
        total += float(v.sum())
        squares += float((v * v).sum())
    return [total, squares]


def _submodule(model: torch.nn.Module, prefix: str) -> torch.nn.Module:
    if is_model_wrapper(model):
        model = model.module
    try:
        return model.get_submodule(prefix.rstrip('.'))
    except AttributeError:
        raise KeyError(f'LeanCheckpointHook: the model has no submodule {prefix!r}') from None


def strip_frozen_weights(model: torch.nn.Module, checkpoint: dict,
                         prefix: str = 'backbone.') -> int:
    """Remove the weights of the frozen submodule ``prefix`` from ``checkpoint``
    (in place) and record where they come from. Returns how many tensors went.

    Raises:
        ValueError: the submodule has a trainable parameter (its weights would be
            lost), or no ``checkpoint`` file to restore them from.
    """
    module = _submodule(model, prefix)
    trainable = [n for n, p in module.named_parameters() if p.requires_grad]
    if trainable:
        raise ValueError(f'LeanCheckpointHook: {prefix} has trainable parameters '
                         f'({trainable[0]}, ...); only a frozen submodule can be left out')
    source = getattr(module, 'checkpoint', None)
    if not source:
        raise ValueError(f'LeanCheckpointHook: {prefix} has no checkpoint file to restore '
                         'its weights from (model.backbone.checkpoint is None)')
    state = checkpoint['state_dict']
    dropped = {k[len(prefix):]: state.pop(k) for k in [k for k in state if k.startswith(prefix)]}
    checkpoint.setdefault('meta', {})[META_KEY] = dict(
        prefix=prefix, source=str(source), num_tensors=len(dropped),
        fingerprint=_fingerprint(dropped))
    return len(dropped)


def restore_frozen_weights(model: torch.nn.Module, checkpoint: dict,
                           source: Optional[str] = None) -> bool:
    """Fill a lean checkpoint's ``state_dict`` back in (in place) from the backbone
    file, loaded through the submodule's own ``init_weights``. Does nothing (returns
    False) for a full checkpoint.

    Args:
        model: the model about to receive the checkpoint.
        checkpoint: the loaded checkpoint object.
        source: the backbone file; default: the submodule's ``checkpoint`` attribute
            (``model.backbone.checkpoint`` of the config).

    Raises:
        FileNotFoundError: no such backbone file.
        ValueError: its weights are not those the checkpoint was saved with.
    """
    record = (checkpoint.get('meta') or {}).get(META_KEY)
    if not record:
        return False
    prefix = record['prefix']
    module = _submodule(model, prefix)
    source = source or getattr(module, 'checkpoint', None)
    if not source or not osp.isfile(source):
        raise FileNotFoundError(
            f'this checkpoint was saved without its frozen {prefix!r} weights '
            f'(LeanCheckpointHook); they are restored from the file they came from, '
            f'{record["source"]}, but {source!r} does not exist: set '
            f'model.backbone.checkpoint to your local copy')
    module.checkpoint = source
    module.init_weights()
    weights = {k: v.detach().cpu() for k, v in module.state_dict().items()}
    if not torch.allclose(torch.tensor(_fingerprint(weights), dtype=torch.float64),
                          torch.tensor(record['fingerprint'], dtype=torch.float64),
                          rtol=1e-9, atol=0.0):
        raise ValueError(f'the {prefix!r} weights in {source} are not those this checkpoint '
                         f'was saved with (from {record["source"]}): fingerprint '
                         f'{_fingerprint(weights)} != {record["fingerprint"]}')
    state = checkpoint['state_dict']
    for key, value in weights.items():
        state[prefix + key] = value
    return True


@HOOKS.register_module()
class LeanCheckpointHook(Hook):
    """Save checkpoints without the frozen backbone; restore it on every load.

    Args:
        prefix: the frozen submodule's key prefix in the state dict.
    """
    priority = 'VERY_LOW'

    def __init__(self, prefix: str = 'backbone.'):
        self.prefix = prefix if prefix.endswith('.') else prefix + '.'

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        strip_frozen_weights(runner.model, checkpoint, self.prefix)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        # runs before the weights go into the model (Runner.load_checkpoint)
        if restore_frozen_weights(runner.model, checkpoint):
            runner.logger.info(f'LeanCheckpointHook: restored the frozen {self.prefix!r} '
                               'weights from their own file')
