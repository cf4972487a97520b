"""A checkpoint must hold the model's weights: a weightless or foreign one is refused.

MMEngine's Runner loads a checkpoint with ``strict=False``: a file whose
``state_dict`` is empty, or holds another model's keys or shapes, gives a "missing
keys" / "size mismatch" warning and then the results of randomly initialised weights
(observed: MaxBoxAcc 11.7 from ``tools/test.py``, exit 0). ``tools/test.py``,
``tools/infer.py`` and the inference API (:func:`~tedloc_mm.apis.init_localizer`,
:class:`~tedloc_mm.apis.WSOLInferencer`) run :func:`check_checkpoint_weights` instead,
the Runner through :class:`CheckpointWeightsHook`.

The rule: **every entry of the model's state dict (parameters and persistent buffers)
must be in the file, with the model's shape**, checked after a lean checkpoint's frozen
encoder was filled back in from its own file (``LeanCheckpointHook`` /
:func:`~tedloc_mm.engine.restore_frozen_weights`, which run first). Lean checkpoints
leave the frozen encoder out on purpose and pass; for any other file the frozen encoder
is required too, because when testing or inferring nothing else loads it: the Runner
does not call ``init_weights`` before ``test()``, and ``WSOLInferencer`` builds a full
checkpoint's model without the backbone file. So "the parameters training produced"
(the ``requires_grad`` ones: decoder, head) and the frozen weights are one check; the
error tells them apart (``frozen`` groups) and names a lean checkpoint whose encoder was
not restored.

Extra keys the model does not have are ignored with a warning that counts them, except
inside a module that training produced (one with trainable parameters: the decoder,
the head): there they mean the file was trained with another architecture of that
module, e.g. a decoder with one more upsampling stage (``model.neck.out_stride=4``
tested with a stride-8 config: the model takes the stages it has and drops the rest,
observed MaxBoxAcc 7.9 instead of 78.8, exit 0), and are refused, naming the module.
"""
import logging
from collections import OrderedDict
from typing import Dict, List, Optional

import torch
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.optim import BaseOptimWrapper

from tedloc_mm.registry import HOOKS
from .lean_checkpoint import META_KEY as LEAN_META_KEY


class CheckpointWeightsError(ValueError):
    """The checkpoint lacks (or mis-shapes) weights of the model; the message names the
    file and the groups of missing tensors."""


def _state_dict_of(checkpoint, filename: str) -> Dict[str, torch.Tensor]:
    state = checkpoint.get('state_dict', checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict):
        what = type(state if isinstance(checkpoint, dict) else checkpoint).__name__
        raise CheckpointWeightsError(f'checkpoint {filename} holds a {what}, not a state dict '
                                     'of model weights')
    # MMEngine's Runner strips a DistributedDataParallel 'module.' prefix when loading
    return {k[len('module.'):] if k.startswith('module.') else k: v for k, v in state.items()}


def _frozen_keys(model: torch.nn.Module) -> set:
    """State-dict keys of the parameters without requires_grad, and of the buffers whose
    nearest enclosing module with parameters has only frozen ones (a frozen encoder's
    BatchNorm statistics, its RoPE tables)."""
    # remove_duplicate=False: a module shared by several parents (EVA-02's RoPE table)
    # has a state-dict key under each of them
    frozen = {n for n, p in model.named_parameters(remove_duplicate=False)
              if not p.requires_grad}
    for name, _ in model.named_buffers(remove_duplicate=False):
        parts = name.split('.')[:-1]
        while parts:
            params = list(model.get_submodule('.'.join(parts)).parameters())
            if params:
                if not any(p.requires_grad for p in params):
                    frozen.add(name)
                break
            parts.pop()
    return frozen


def _groups(keys: List[str], own: Dict[str, torch.Tensor], frozen: set) -> List[str]:
    """'neck: 14/14 tensors' for a wholly missing top-level module, else its
    second-level parts ('head.fg_classifier: 2/2 tensors'); '(frozen)' when every
    tensor of the group is a frozen one."""
    def count(prefix):
        return [k for k in own if k == prefix or k.startswith(prefix + '.')]

    by_top = OrderedDict()
    for k in keys:
        by_top.setdefault(k.split('.')[0], []).append(k)
    out = []
    for top, bad in by_top.items():
        total = count(top)
        if len(bad) == len(total) or '.' not in bad[0]:
            parts = [(top, bad, total)]
        else:
            by_sub = OrderedDict()
            for k in bad:
                by_sub.setdefault('.'.join(k.split('.')[:2]), []).append(k)
            parts = [(sub, b, count(sub)) for sub, b in by_sub.items()]
        for name, b, tot in parts:
            tag = ' (frozen)' if all(k in frozen for k in tot) else ''
            out.append(f'{name}: {len(b)}/{len(tot)} tensors{tag}')
    return out


def check_checkpoint_weights(model: torch.nn.Module, checkpoint, filename: str,
                             logger=None) -> Dict[str, List[str]]:
    """Refuse a checkpoint that does not hold the weights of ``model`` (module doc).

    Args:
        model: the model about to receive the weights (a wrapper is unwrapped).
        checkpoint: the loaded file: ``{'state_dict': ..., 'meta': ...}`` or a plain
            state dict; a lean one after its frozen weights were restored.
        filename: named in the error and the warning.
        logger: where the extra-keys warning goes (default: MMEngine's current).

    Returns:
        ``{'unexpected': keys the model does not have}`` (ignored, warned about;
        outside the trained modules).

    Raises:
        CheckpointWeightsError: missing tensors or other shapes, by group, e.g.
            ``neck: 14/14 tensors, head.fg_classifier: 2/2 tensors``; or extra tensors
            inside a trained module (another architecture of it).
    """
    if is_model_wrapper(model):
        model = model.module
    state = _state_dict_of(checkpoint, filename)
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    shapes = [k for k in own if k in state and hasattr(state[k], 'shape')
              and tuple(state[k].shape) != tuple(own[k].shape)]
    unexpected = [k for k in state if k not in own]
    trained_tops = {n.split('.')[0] for n, p in model.named_parameters() if p.requires_grad}
    foreign_parts = [k for k in unexpected if k.split('.')[0] in trained_tops]
    if foreign_parts and not (missing or shapes):
        parts = OrderedDict()
        for k in foreign_parts:
            parts.setdefault('.'.join(k.split('.')[:3]), []).append(k)
        raise CheckpointWeightsError(
            f'checkpoint {filename} was trained with another architecture of this '
            f'{type(model).__name__}: it holds weights the model does not have in its '
            'trained module(s) ' + ', '.join(f'{n} ({len(v)} tensors)'
                                             for n, v in parts.items()) +
            '; testing with it would drop them. Build the model as it was trained '
            '(the config the checkpoint was trained with, e.g. the same '
            'model.neck.out_stride).')
    if missing or shapes:
        frozen = _frozen_keys(model)
        lines = []
        if missing:
            lines.append(f'{len(missing)} of the model\'s {len(own)} tensors are missing: '
                         + ', '.join(_groups(missing, own, frozen)))
        if shapes:
            lines.append(f'{len(shapes)} have another shape in the file: ' + ', '.join(
                f'{k} {tuple(state[k].shape)} (model {tuple(own[k].shape)})'
                for k in shapes[:5]) + (' ...' if len(shapes) > 5 else ''))
        meta = checkpoint.get('meta') if isinstance(checkpoint, dict) else None
        if any(k in frozen for k in missing) and (meta or {}).get(LEAN_META_KEY):
            lines.append('it is a lean checkpoint (saved without its frozen encoder): add '
                         "custom_hooks=[dict(type='tedloc.LeanCheckpointHook')] to the config so "
                         'that the encoder is restored from its own file')
        if unexpected:
            lines.append(f'{len(unexpected)} of its keys are not in the model '
                         f'(e.g. {unexpected[:3]}; a checkpoint of another model)')
        raise CheckpointWeightsError(
            f'checkpoint {filename} does not hold the weights of this '
            f'{type(model).__name__}; testing or inferring with it would use random '
            'weights. ' + '; '.join(lines) + '.')
    if unexpected:
        print_log(f'checkpoint {filename}: {len(unexpected)} keys the model does not have '
                  f'are ignored (e.g. {unexpected[:3]})', logger=logger or 'current',
                  level=logging.WARNING)
    return dict(unexpected=unexpected)


@HOOKS.register_module()
class CheckpointWeightsHook(Hook):
    """Run :func:`check_checkpoint_weights` on the checkpoint a test or validation run
    loads (``load_from``), before the weights go into the model.

    Our configs have it as ``default_hooks.checkpoint_weights``
    (``configs/_base_/default_runtime.py``; a ``default_hooks`` entry, so a config that
    replaces ``custom_hooks`` keeps it), so every tool that tests a checkpoint through
    the Runner refuses a weightless one: ours, MMPretrain's ``tools/test.py``,
    ``Runner.from_cfg(cfg).test()``. A **training** run is left alone: ``load_from`` there
    may be a partial checkpoint to fine-tune from (MMEngine loads it non-strictly).
    Training is told apart by the Runner's ``optim_wrapper``, which ``Runner.train()``
    builds before it loads a checkpoint and ``test()`` / ``val()`` never build.

    Priority LOWEST: after ``LeanCheckpointHook`` (VERY_LOW) restored a lean
    checkpoint's frozen encoder.

    Args:
        filename: the file named in errors (default: the config's ``load_from``).
    """
    priority = 'LOWEST'

    def __init__(self, filename: Optional[str] = None):
        self.filename = filename

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if isinstance(runner.optim_wrapper, BaseOptimWrapper):
            return  # training: fine-tuning from a partial checkpoint is allowed
        name = self.filename or runner.cfg.get('load_from') or '(checkpoint)'
        check_checkpoint_weights(runner.model, checkpoint, name, logger=runner.logger)
