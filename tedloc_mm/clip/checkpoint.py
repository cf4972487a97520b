"""One loader for CLIP weights from a local file: OpenAI TorchScript archives and open_clip
checkpoints (no hub download, ever).

Two file formats are accepted, told apart by their content (not their name):

* an **OpenAI CLIP archive** (``ViT-B-16.pt`` as OpenAI distributed it and CLIP-ES / the
  TeD-Loc authors load it with ``clip.load``): a TorchScript zip (it holds ``code/``).
  It is read with :func:`open_clip.load_openai_model`, which rebuilds an open_clip
  ``CLIP`` from the archive's state dict (architecture inferred from the tensor shapes,
  QuickGELU as OpenAI trained it) in float32. ``model_name``, when given, is checked
  against the inferred architecture (an archive of another size is an error naming both);
* an **open_clip checkpoint** (``.bin`` / ``.pth`` / ``.safetensors``, a state dict or a
  dict with ``state_dict``): ``open_clip.create_model(model_name, pretrained=<file>)``.
  The state-dict keys of OpenAI and open_clip ViT models are the same, but OpenAI
  models use QuickGELU: name the ``-quickgelu`` architecture (e.g.
  ``ViT-B-16-quickgelu``) for OpenAI weights saved as a state dict.

A missing file, a file that is neither format, or weights of another architecture
raise an error that names the file.

Safety: open_clip 3.3.0 reads its files with ``torch.load(weights_only=True)`` (a file
that needs more is refused; measured in ``tests/test_fileio/test_checkpoint_files.py``). A
TorchScript archive, on the other hand, is a program by design: ``torch.jit.load``
runs the TorchScript code it holds. Load only archives from a source you trust
(OpenAI's own download, a copy you made).
"""
import os.path as osp
import warnings
import zipfile
from typing import Optional

import torch

RANDOM_INIT_WARNING = (
    '\n' + '!' * 78 + '\n'
    'RANDOM-INITIALISED CLIP: no language or vision semantics. Only good for offline\n'
    'demos and tests; anything computed from it means nothing.\n' + '!' * 78)


def is_torchscript_archive(path: str) -> bool:
    """True for a TorchScript zip (``torch.jit.save``: it has a ``code/`` folder);
    False for ``torch.save`` zips, legacy pickles, safetensors and anything else."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as zf:
        return any('/code/' in name for name in zf.namelist())


def _check_openai_arch(model, model_name: str, path: str) -> None:
    """The open_clip config ``model_name`` must describe the archive's architecture."""
    from open_clip import get_model_config
    cfg = get_model_config(model_name)
    if cfg is None:
        return  # an architecture open_clip has no config for: nothing to compare
    v = model.visual
    have = dict(embed_dim=model.text_projection.shape[1],
                width=v.conv1.out_channels, layers=len(v.transformer.resblocks),
                patch_size=v.conv1.kernel_size[0],
                image_size=v.positional_embedding.shape[0])
    vc = cfg['vision_cfg']
    patch = vc.get('patch_size')
    grid = vc.get('image_size', 224) // patch if patch else None
    want = dict(embed_dim=cfg.get('embed_dim'), width=vc.get('width'), layers=vc.get('layers'),
                patch_size=patch, image_size=grid * grid + 1 if grid else None)
    diff = {k: (have[k], want[k]) for k in have if want[k] is not None and have[k] != want[k]}
    if diff:
        raise ValueError(
            f'CLIP checkpoint {path} is not a {model_name}: '
            + ', '.join(f'{k} {a} in the file, {b} in {model_name}' for k, (a, b) in diff.items())
            + ' (positional embedding counted in tokens). Give the matching --model.')


def load_clip(model_name: Optional[str], checkpoint: Optional[str] = None,
              device='cpu', random_init: bool = False, seed: int = 0,
              random_init_warning: str = RANDOM_INIT_WARNING, **arch_overrides):
    """An open_clip ``CLIP`` (eval mode, float32) and its tokenizer, without network.

    Args:
        model_name: open_clip architecture name (e.g. ``'ViT-B-16'``); for an OpenAI
            archive it only picks the tokenizer and is checked against the file
            (``None``: no check, the default tokenizer).
        checkpoint: local file (see the module docstring), or None with ``random_init``.
            An OpenAI TorchScript archive is code (``torch.jit.load``): only from a
            source you trust; open_clip files are read with ``weights_only=True``.
        device: where the model goes.
        random_init: allow random weights when ``checkpoint`` is None (warns loudly).
        seed: seed of the random weights.
        random_init_warning: the warning random weights give.
        **arch_overrides: open_clip ``create_model`` overrides of the architecture
            (``embed_dim``, ``vision_cfg``, ``text_cfg``, ...): tiny towers for tests
            and synthetic demos. Only with random weights or open_clip files.
    """
    import open_clip  # after `import tedloc_mm` (torchvision workaround)
    if model_name is not None and model_name not in open_clip.list_models():
        raise ValueError(f'unknown open_clip model {model_name!r}')
    if checkpoint is None:
        if not random_init:
            raise ValueError('a local CLIP checkpoint file is required (an OpenAI .pt archive '
                             'or an open_clip file); nothing is downloaded. For an offline '
                             'demo or a test only, allow random weights (random_init / '
                             '--random-init).')
        if model_name is None:
            raise ValueError('random weights need an open_clip model name')
        warnings.warn(random_init_warning, stacklevel=2)
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            model = open_clip.create_model(model_name, pretrained=None, **arch_overrides)
    else:
        if not osp.isfile(checkpoint):
            raise FileNotFoundError(f'CLIP checkpoint {checkpoint!r} does not exist (a local file '
                                    'is needed; nothing is downloaded)')
        if is_torchscript_archive(checkpoint):
            if arch_overrides:
                raise ValueError(f'{checkpoint} is an OpenAI archive: its architecture comes from '
                                 f'the file, overrides {sorted(arch_overrides)} cannot apply')
            try:
                model = open_clip.load_openai_model(checkpoint, precision='fp32', device='cpu')
            except (RuntimeError, KeyError) as err:
                raise ValueError(f'{checkpoint} is a TorchScript archive but not an OpenAI CLIP '
                                 f'model: {err}') from err
            if model_name is not None:
                _check_openai_arch(model, model_name, checkpoint)
        else:
            if model_name is None:
                raise ValueError(f'{checkpoint} is an open_clip checkpoint: give its '
                                 'architecture name (--model)')
            try:
                model = open_clip.create_model(model_name, pretrained=checkpoint, **arch_overrides)
            except Exception as err:  # not a checkpoint, or weights of another architecture
                raise ValueError(f'cannot load CLIP checkpoint {checkpoint} as an OpenAI archive '
                                 f'or into the open_clip architecture {model_name}: '
                                 f'{type(err).__name__}: {str(err)[:600]}') from err
    model = model.to(device).eval()
    tokenizer = open_clip.get_tokenizer(model_name or 'ViT-B-16',
                                        context_length=getattr(model, 'context_length', None))
    return model, tokenizer


def clip_image_mean_std(model):
    """(mean, std) of the model's image normalisation, in [0, 1] RGB units."""
    from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD
    visual = model.visual
    cfg = getattr(visual, 'preprocess_cfg', None) or {}
    mean = getattr(visual, 'image_mean', None) or cfg.get('mean') or OPENAI_DATASET_MEAN
    std = getattr(visual, 'image_std', None) or cfg.get('std') or OPENAI_DATASET_STD
    return tuple(float(m) for m in mean), tuple(float(s) for s in std)


def write_openai_archive(model, path: str):
    """Save an open_clip ``CLIP`` the way OpenAI's ``ViT-B-16.pt`` holds it: a TorchScript
    archive whose state dict has OpenAI's key layout (open_clip's CLIP keys minus its
    non-persistent ``attn_mask``), the weights of the linear / conv / attention layers in
    float16, and the ``input_resolution`` / ``context_length`` / ``vocab_size`` entries.
    For tests and the reproduction's smoke run (random weights in the real format).

    Returns the model the archive holds, in float32 (its float16 weights upcast).
    """
    import copy

    from open_clip.model import convert_weights_to_fp16
    half = copy.deepcopy(model)
    convert_weights_to_fp16(half)
    root = torch.nn.Module()
    for key, value in half.state_dict().items():
        *path_, leaf = key.split('.')
        mod = root
        for p in path_:
            if not hasattr(mod, p):
                mod.add_module(p, torch.nn.Module())
            mod = getattr(mod, p)
        mod.register_buffer(leaf, value.clone())
    v = model.visual
    for key, value in dict(input_resolution=v.image_size[0], context_length=model.context_length,
                           vocab_size=model.vocab_size).items():
        root.register_buffer(key, torch.tensor(value))
    torch.jit.save(torch.jit.script(root), str(path))
    half.float()
    return half


def write_random_clip_file(path: str, model_name: str, openai_archive: bool, seed: int = 0):
    """A random-weight CLIP file in a real format: OpenAI's TorchScript archive
    (``openai_archive``) or an open_clip checkpoint (a plain state dict, as open_clip's
    ``open_clip_pytorch_model.bin``). For smoke runs and tests only: no semantics."""
    import open_clip
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = open_clip.create_model(model_name, pretrained=None)
    if openai_archive:
        write_openai_archive(model, path)
    else:
        torch.save(model.state_dict(), path)
