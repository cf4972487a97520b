"""The inputs of a paper reproduction (tools/reproduce_paper.py), checked before any long
step: the data set's files and class list, each weight file's format and shapes, the free
disk. Every check runs; each problem is one line that says what is wrong and how to fix
it, so that a user sees everything missing at once.

Weight files are checked from their tensor shapes only (safetensors headers, a memory-
mapped ``torch.load(weights_only=True)``, or the state dict of a TorchScript archive), not
by building the models. What the shapes must be comes from the config (the encoder's
``arch`` and ``patch_size``, the anchors' text tower ``anchor_text.model`` and width
``model.head.in_channels``, ``model.head.num_classes``) and from open_clip's architecture
configs (the CLIP-ES image tower).
"""
import os
import os.path as osp
import re
import shutil
from typing import Dict, List, Optional, Tuple

__all__ = ['CUB_RELEASE_FILES', 'WSOL_SPLIT_FILES', 'read_shapes', 'check_eva_file',
           'check_openai_clip_file', 'check_text_tower_file', 'check_cub_release',
           'check_wsol_metadata', 'check_free_disk', 'eva_arch', 'count_lines',
           'CAM_BYTES_PER_IMAGE']

#: the files of the CUB-200-2011 release that tools/dataset_converters/cub.py reads
CUB_RELEASE_FILES = ('images.txt', 'image_class_labels.txt', 'bounding_boxes.txt',
                     'train_test_split.txt', 'classes.txt')
#: the files every WSOL metadata split needs (localization for val / test)
WSOL_SPLIT_FILES = ('image_ids.txt', 'class_labels.txt', 'image_sizes.txt')
#: one stored CAM: 64 x 64 uint8 (tedloc_mm/fileio/cam_store.py) + its id line
CAM_BYTES_PER_IMAGE = 64 * 64 + 64

CUB_URL = 'https://data.caltech.edu/records/65de6-vhv40 (CUB_200_2011.tgz)'
WSOLEVAL = 'https://github.com/clovaai/wsolevaluation (metadata/)'
EVA_HINT = ("timm's eva_large_patch14_196.in22k_ft_in22k_in1k (model.safetensors, "
            "https://huggingface.co/timm/eva_large_patch14_196.in22k_ft_in22k_in1k) or "
            "BAAI's eva_l_psz14_196px_21k_to_1k_ft_88p6.pt")
CLIP_HINT = ("OpenAI's ViT-B-16.pt archive (the URL is in open_clip's "
             "pretrained table, open_clip.list_pretrained_tags_by_model('ViT-B-16'))")


def count_lines(path: str) -> int:
    with open(path, encoding='utf-8') as f:
        return sum(1 for line in f if line.strip())


# ------------------------------------------------------------------------ weight files
def read_shapes(path: str) -> Dict[str, Tuple[int, ...]]:
    """``{key: shape}`` of the tensors of a weight file without reading their data
    where the format allows (safetensors, memory-mapped torch zip); the state dict of
    ``state_dict`` / ``model`` / ``module`` wrappers, ``module.`` prefixes removed.
    Raises ValueError naming the file when it is none of these formats."""
    import torch
    from tedloc_mm.clip.checkpoint import is_torchscript_archive
    if path.endswith('.safetensors'):
        from safetensors import safe_open
        with safe_open(path, framework='pt') as f:
            return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    if is_torchscript_archive(path):
        sd = torch.jit.load(path, map_location='cpu').state_dict()
    else:
        try:
            sd = torch.load(path, map_location='cpu', weights_only=True, mmap=True)
        except Exception as err:  # not a torch file, a pickle of other objects, cut
            raise ValueError(f'{path}: not a readable weight file ({type(err).__name__}: '
                             f'{str(err)[:200]})') from err
    for key in ('state_dict', 'model', 'module'):
        if isinstance(sd, dict) and isinstance(sd.get(key), dict):
            sd = sd[key]
            break
    if not isinstance(sd, dict):
        raise ValueError(f'{path}: holds a {type(sd).__name__}, not a state dict')
    return {(k[7:] if k.startswith('module.') else k): tuple(v.shape)
            for k, v in sd.items() if hasattr(v, 'shape')}


def eva_arch(backbone_cfg) -> Tuple[int, int, int]:
    """(embed_dims, num_layers, patch_size) of a ``FrozenEVA`` config (MMPretrain's arch
    table for a named arch)."""
    arch = backbone_cfg.get('arch', 'l')
    if isinstance(arch, str):
        if backbone_cfg.get('variant', 'eva01') == 'eva02':
            from mmpretrain.models.backbones.vit_eva02 import ViTEVA02 as table
        else:  # EVA-01: BEiTViT, whose arch names are VisionTransformer's
            from mmpretrain.models.backbones.vision_transformer import \
                VisionTransformer as table
        arch = table.arch_zoo[arch]
    return int(arch['embed_dims']), int(arch['num_layers']), int(backbone_cfg['patch_size'])


def _num_blocks(shapes, prefix_re) -> int:
    found = {int(m.group(1)) for k in shapes for m in [re.match(prefix_re, k)] if m}
    return max(found) + 1 if found else 0


def check_eva_file(path: str, backbone_cfg, option='--eva-checkpoint') -> List[str]:
    """Problems of the EVA-01 classification file (timm's or BAAI's layout) that the
    config's encoder needs: patch embedding (C, 3, p, p) and the number of blocks."""
    dims, layers, patch = eva_arch(backbone_cfg)
    want = f'EVA-01 width {dims}, {layers} blocks, patch {patch}'
    if not path or not osp.isfile(path):
        return [f'{option} {path or "(not given)"}: no such file. Get {EVA_HINT} '
                f'({want})']
    try:
        shapes = read_shapes(path)
    except ValueError as err:
        return [f'{option} {err}. Expected {EVA_HINT}']
    shapes = {(k[7:] if k.startswith('visual.') else k): v for k, v in shapes.items()}
    have = shapes.get('patch_embed.proj.weight')
    blocks = _num_blocks(shapes, r'blocks\.(\d+)\.')
    expected = (dims, 3, patch, patch)
    if have is None or tuple(have) != expected or blocks != layers:
        got = ('no patch_embed.proj.weight' if have is None else
               f'patch embedding {tuple(have)}, {blocks} blocks')
        return [f'{option} {path}: not the config\'s encoder: {got}; {want} has patch '
                f'embedding {expected} and {layers} blocks. Give {EVA_HINT}']
    return []


def _open_clip_config(name: str) -> dict:
    import open_clip  # the package's compat workarounds are installed: we are inside it
    cfg = open_clip.get_model_config(name)
    if cfg is None:
        raise ValueError(f'open_clip has no architecture {name!r}')
    return cfg


def check_openai_clip_file(path: str, model_name: str = 'ViT-B-16',
                           option='--clip-checkpoint') -> List[str]:
    """Problems of the CLIP-ES file: an OpenAI TorchScript archive of ``model_name``
    (image tower width, patch and depth from open_clip's config of that name)."""
    from tedloc_mm.clip.checkpoint import is_torchscript_archive
    if not path or not osp.isfile(path):
        return [f'{option} {path or "(not given)"}: no such file. Get {CLIP_HINT}']
    if not is_torchscript_archive(path):
        return [f'{option} {path}: not an OpenAI TorchScript archive (CLIP-ES uses OpenAI\'s '
                f'{model_name}). Get {CLIP_HINT}']
    vc = _open_clip_config(model_name)['vision_cfg']
    try:
        shapes = read_shapes(path)
    except Exception as err:  # a TorchScript archive of something else
        return [f'{option} {path}: cannot read its weights ({err}). Get {CLIP_HINT}']
    expected = (vc['width'], 3, vc['patch_size'], vc['patch_size'])
    have = shapes.get('visual.conv1.weight')
    blocks = _num_blocks(shapes, r'visual\.transformer\.resblocks\.(\d+)\.')
    if have != expected or blocks != vc['layers']:
        got = 'no visual.conv1.weight' if have is None else f'patch conv {have}, {blocks} blocks'
        return [f'{option} {path}: not OpenAI\'s {model_name}: {got}; {model_name} has '
                f'{expected} and {vc["layers"]} blocks. Get {CLIP_HINT}']
    return []


def check_text_tower_file(path: str, model_name: str, width: int,
                          option='--text-checkpoint') -> List[str]:
    """Problems of the anchors' text-tower file: an open_clip checkpoint (or OpenAI
    archive) of ``model_name`` whose text embeddings are ``width`` wide (the config's
    anchor width)."""
    hint = (f'the open_clip {model_name} checkpoint (open_clip_pytorch_model.bin or '
            f'.safetensors of an open_clip {model_name} release) named by the config\'s '
            'anchor_text.model')
    if not path or not osp.isfile(path):
        return [f'{option} {path or "(not given)"}: no such file. Get {hint}']
    cfg = _open_clip_config(model_name)
    tc = cfg['text_cfg']
    if cfg['embed_dim'] != width:
        return [f'the config\'s anchor_text.model {model_name} embeds in {cfg["embed_dim"]} '
                f'dimensions, its model.head.in_channels is {width}: fix the config']
    try:
        shapes = read_shapes(path)
    except ValueError as err:
        return [f'{option} {err}. Get {hint}']
    expected = (tc['width'], cfg['embed_dim'])
    have = shapes.get('text_projection')
    blocks = _num_blocks(shapes, r'transformer\.resblocks\.(\d+)\.')
    if have != expected or blocks != tc['layers']:
        got = 'no text_projection' if have is None else f'text_projection {have}, {blocks} blocks'
        return [f'{option} {path}: not the text tower of {model_name}: {got}; {model_name} '
                f'has text_projection {expected} and {tc["layers"]} text blocks. Get {hint}']
    return []


# ------------------------------------------------------------------------ data
def check_cub_release(root: str, num_classes: int, option='--data-root') -> List[str]:
    """Problems of a CUB-200-2011 release folder: its five files, its class list's length
    (the config's K), the images it lists."""
    if not root or not osp.isdir(root):
        return [f'{option} {root or "(not given)"}: no such folder. Download {CUB_URL} and '
                'unpack it; give its CUB_200_2011 folder']
    problems = [f'{option}: {osp.join(root, name)} is missing (part of the CUB-200-2011 '
                f'release: unpack {CUB_URL} again)'
                for name in CUB_RELEASE_FILES if not osp.isfile(osp.join(root, name))]
    classes = osp.join(root, 'classes.txt')
    if osp.isfile(classes) and count_lines(classes) != num_classes:
        problems.append(f'{option}: {classes} lists {count_lines(classes)} classes, the '
                        f'config\'s model.head.num_classes is {num_classes}: use the '
                        'original release file (200 lines)')
    images = osp.join(root, 'images.txt')
    if osp.isfile(images):
        missing, first = 0, []
        with open(images, encoding='utf-8') as f:
            for lineno, line in enumerate(f, 1):
                fields = line.split()
                if len(fields) == 2 and not osp.isfile(osp.join(root, 'images', fields[1])):
                    missing += 1
                    if len(first) < 3:
                        first.append(f'line {lineno}: images/{fields[1]}')
        if missing:
            problems.append(f'{option}: {missing} image(s) listed in {images} are missing '
                            f'({"; ".join(first)}{", ..." if missing > 3 else ""}): unpack '
                            'the release\'s images/ folder completely')
    return problems


def check_wsol_metadata(metadata_root: str, splits, num_classes: Optional[int],
                        what: str, fix: str) -> List[str]:
    """Problems of a WSOL metadata folder: each split's files (val / test also a
    localization file) and their format (read as training will read them, labels below
    ``num_classes``), ``class_names.txt`` of ``num_classes`` lines (None: not needed).
    For ILSVRC's 1.28 M train lines this reading takes seconds."""
    problems = []
    for split in splits:
        d = osp.join(metadata_root, split)
        need = WSOL_SPLIT_FILES + (() if split == 'train' else ('localization.txt', ))
        missing = [n for n in need if not osp.isfile(osp.join(d, n))]
        if missing:
            problems.append(f'{what}: {d} lacks {", ".join(missing)}: {fix}')
        else:  # the format, line by line (the reader's errors name file and line)
            from tedloc_mm.fileio.wsol_metadata import WSOLMetadataError, read_wsol_split
            try:
                read_wsol_split(d, num_classes=num_classes)
            except (WSOLMetadataError, FileNotFoundError) as err:
                problems.append(f'{what}: {err}: {fix}')
    if num_classes is not None:
        names = osp.join(metadata_root, 'class_names.txt')
        if not osp.isfile(names):
            problems.append(f'{what}: {names} is missing ({num_classes} class names, one a '
                            f'line in label order): {fix}')
        elif count_lines(names) != num_classes:
            problems.append(f'{what}: {names} has {count_lines(names)} names, the config\'s '
                            f'model.head.num_classes is {num_classes}: one name a line in '
                            'label order')
    return problems


def check_free_disk(work_dir: str, num_train_images: int, other_bytes: int) -> List[str]:
    """The CAM store (``CAM_BYTES_PER_IMAGE`` per train image) plus ``other_bytes``
    (converted encoder, checkpoints, logs) must fit in the free space at ``work_dir``."""
    need = num_train_images * CAM_BYTES_PER_IMAGE + other_bytes
    at = work_dir
    while not osp.isdir(at):
        at = osp.dirname(osp.abspath(at))
    free = shutil.disk_usage(at).free
    if free < need:
        return [f'--work-dir {work_dir}: {free / 1e9:.1f} GB free, the run needs about '
                f'{need / 1e9:.1f} GB (CAM store {num_train_images} x '
                f'{CAM_BYTES_PER_IMAGE} B, encoder and checkpoints {other_bytes / 1e9:.1f} '
                'GB): free space or choose another --work-dir']
    return []


def file_size(path: Optional[str]) -> int:
    return os.path.getsize(path) if path and osp.isfile(path) else 0
