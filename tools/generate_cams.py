"""Generate the pseudo-label CAMs of a WSOL split into a CAM store.

Two sources (subcommands):

* ``clip-es``: CLIP-ES Grad-CAM (softmax target against background prompts, CAA
  refinement, optional multi-scale) of a CLIP ViT from a local file: OpenAI's
  ``ViT-B-16.pt`` TorchScript archive or an open_clip checkpoint
  (``tedloc_mm/clip/es_cam.py``; every option below, defaults = CLIP-ES);
* ``classifier``: Grad-CAM of any MMPretrain classifier (config + checkpoint) for the
  ground-truth class (``tedloc_mm/pseudo_labels/classifier_cam.py``).

Resumable (ids already in the store are skipped; a run killed at any point, SIGKILL
included, resumes to a byte-identical store, the interrupted batch recomputed whole) and
shardable: ``--shard i/n`` (or torchrun's RANK / WORLD_SIZE) makes this process do every
n-th image and write its own shard of the store; run n processes, on one or several
machines sharing the folder. An unreadable image stops the run with an error naming it.

Examples::

    python tools/generate_cams.py clip-es --model ViT-B-16 \
        --checkpoint checkpoints/clip/ViT-B-16.pt \
        --data-root data/CUB_200_2011/images --metadata-root data/CUB_200_2011/metadata \
        --split train --out data/CUB_200_2011/cams_clip_es --batch-size 32 --device cuda

    torchrun --nproc-per-node 4 tools/generate_cams.py classifier CONFIG CKPT \
        --data-root data/synthetic --split train --out data/synthetic/cams --device cuda
"""
import argparse
import os.path as osp

import tedloc_mm  # noqa: F401  (compat patches before open_clip / mmpretrain.models)
from tedloc_mm.tool_errors import add_debug_argument, check_device, run_tool  # noqa: E402
from tedloc_mm.clip.prompts import BUILTIN_CLASS_LISTS

# the dataset, the models and torch are imported in main(), after the arguments are parsed


def add_common(p):
    p.add_argument('--data-root', required=True, help='image root of the WSOL dataset')
    p.add_argument('--metadata-root', default=None,
                   help='WSOL metadata directory (default DATA_ROOT/metadata)')
    p.add_argument('--class-names', default=None,
                   help='class-names file (default METADATA_ROOT/class_names.txt)')
    p.add_argument('--split', default='train')
    p.add_argument('--out', required=True, help='CAM store directory')
    p.add_argument('--batch-size', type=int, default=16)
    p.add_argument('--device', default='cpu')
    p.add_argument('--shard', default=None, help='i/n (default: torchrun RANK/WORLD_SIZE)')
    p.add_argument('--resolution', type=int, default=64, help='stored CAM side (default 64)')
    p.add_argument('--input-size', type=int, default=None,
                   help="square network input side (default: the model's own image size, "
                   'else 224)')
    p.add_argument('--num-workers', type=int, default=None,
                   help='image-loading worker processes (default min(2, cores - 1); '
                   '0 loads in the main process)')
    p.add_argument('--target-layer', nargs='+', default=None,
                   help='dotted module path for Grad-CAM (classifier: several paths '
                   'average their maps)')
    p.add_argument('--no-progress', action='store_true')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    sub = parser.add_subparsers(dest='source', required=True)
    p = sub.add_parser('clip-es', help='CLIP-ES Grad-CAM of a CLIP ViT')
    p.add_argument('--model', required=True, help='open_clip model name, e.g. ViT-B-16 (for '
                   'an OpenAI archive: checked against the file)')
    p.add_argument('--checkpoint', required=True, help='local CLIP file: OpenAI TorchScript '
                   'archive (ViT-B-16.pt; code by design, torch.jit.load runs it: only '
                   'archives from a source you trust) or open_clip checkpoint (read with '
                   'weights_only=True)')
    p.add_argument('--templates', nargs='+', default=['clip_es'],
                   help="a named set (clip_es = 'a clean origami {}.', the default; single, "
                   'ensemble, openai_imagenet, ...) or templates with {}')
    p.add_argument('--background-words', nargs='+', default=None,
                   help="background prompts (default: CLIP-ES's 25 words)")
    p.add_argument('--class-list', default=None, choices=['folders', *BUILTIN_CLASS_LISTS],
                   help='class names instead of the metadata class_names.txt: the image '
                   "folders' names (CUB) or a built-in list (imagenet_openai: OpenAI's "
                   'readable ImageNet names)')
    p.add_argument('--softmax-over', choices=['label', 'all'], default='label',
                   help='Grad-CAM target: softmax of the label among [label, background] '
                   '(CLIP-ES, default) or among all classes and background')
    p.add_argument('--image-pool', choices=['patch_mean', 'cls'], default='patch_mean',
                   help="image embedding of the logits: mean of the patch tokens (CLIP-ES, "
                   "default) or CLIP's class token")
    p.add_argument('--no-refine', action='store_true',
                   help='skip the CAA attention-affinity refinement (CLIP-ES refines)')
    p.add_argument('--attn-layers', type=int, default=8,
                   help='CAA: last layers whose attention is averaged (default 8)')
    p.add_argument('--box-threshold', type=float, default=0.4,
                   help='CAA: box-mask threshold on the Grad-CAM (default 0.4)')
    p.add_argument('--scales', type=float, nargs='+', default=[1.0],
                   help='input scales averaged (default 1.0 only)')
    p.add_argument('--flip', action='store_true', help='also average horizontally flipped inputs')
    add_common(p)
    p = sub.add_parser('classifier', help='Grad-CAM of an MMPretrain classifier')
    p.add_argument('config', help='MMPretrain config of the classifier')
    p.add_argument('checkpoint', help='its checkpoint (read with weights_only=True plus the '
                   "globals of MMEngine's Runner checkpoints; anything else is refused)")
    p.add_argument('--trust-checkpoint', action='store_true',
                   help='read CHECKPOINT with full unpickling (weights_only=False): only '
                   'for a file you trust, as unpickling can run code')
    p.add_argument('--affinity-layers', nargs='+', default=None,
                   help='refine the map by the cosine affinity of these CNN feature maps '
                   "(dotted paths, e.g. backbone.blocks.4 backbone.bn2), CLIP-ES's CAA "
                   'with feature affinity in place of attention (default: no refinement)')
    p.add_argument('--affinity-temperature', type=float, default=0.1,
                   help='tau of the affinity exp(cos / tau) (default 0.1)')
    p.add_argument('--affinity-box-threshold', type=float, default=0.4,
                   help="CAA's box-mask threshold (default 0.4, CLIP-ES's)")
    p.add_argument('--affinity-power', type=int, default=1,
                   help='squarings of the transition matrix (default 1, CLIP-ES\'s)')
    add_common(p)
    add_debug_argument(parser)
    return parser.parse_args(argv)


def resolve_num_workers(num_workers):
    """``--num-workers`` as given, else ``min(2, cores - 1)`` (the default is computed
    after parsing: its module imports torch)."""
    if num_workers is not None:
        return num_workers
    from tedloc_mm.pseudo_labels.generation import default_num_workers
    return default_num_workers()


def main(argv=None):
    args = parse_args(argv)
    check_device(args.device)   # a device this machine lacks: one error line
    from tedloc_mm.datasets import WSOLDataset
    from tedloc_mm.pseudo_labels.generation import (clip_preprocess, generate_cams,
                                                    mmpretrain_preprocess, parse_shard)
    args.num_workers = resolve_num_workers(args.num_workers)
    names_file = args.class_names
    if names_file is None and (args.source == 'classifier' or getattr(args, 'class_list', None)):
        default = osp.join(args.metadata_root or osp.join(args.data_root, 'metadata'),
                           'class_names.txt')
        names_file = default if osp.isfile(default) else False
    dataset = WSOLDataset(data_root=args.data_root, split=args.split,
                          metadata_root=args.metadata_root, class_names_file=names_file,
                          pipeline=[], serialize_data=False)
    items = [(d['img_id'], d['img_path'], d['gt_label']) for d in dataset.data_list]

    if args.source == 'clip-es':
        from tedloc_mm.clip import builtin_class_names, clip_image_mean_std, resolve_templates
        from tedloc_mm.clip.es_cam import BACKGROUND_WORDS, CLIPESGradCAM, build_open_clip
        from tedloc_mm.fileio import class_names_from_folders
        if args.target_layer:
            raise ValueError('--target-layer does not apply to clip-es: the Grad-CAM layer is '
                             "the last block's attention input (CLIP-ES's)")
        if args.class_list == 'folders':
            names = class_names_from_folders([it[0] for it in items], [it[2] for it in items])
        elif args.class_list:
            names = builtin_class_names(args.class_list)
        else:
            names = dataset.metainfo['classes']
        model, tokenizer = build_open_clip(args.model, args.checkpoint, args.device)
        spec = args.templates[0] if len(args.templates) == 1 else args.templates
        cam_fn = CLIPESGradCAM(
            model, tokenizer, names, templates=resolve_templates(spec),
            background_words=args.background_words or BACKGROUND_WORDS,
            softmax_over=args.softmax_over, image_pool=args.image_pool,
            refine=not args.no_refine, attn_layers=args.attn_layers,
            box_threshold=args.box_threshold, scales=args.scales, flip=args.flip)
        preprocess = clip_preprocess(*clip_image_mean_std(model))
        native = getattr(model.visual, 'image_size', None)
    else:
        from tedloc_mm.pseudo_labels.classifier_cam import (ClassifierGradCAM,
                                                            build_classifier)
        # the data set's classes, not the config's (a config reused on other data)
        model = build_classifier(args.config, args.checkpoint, args.device,
                                 trust_checkpoint=args.trust_checkpoint,
                                 num_classes=len(dataset.metainfo.get('classes') or ()) or None)
        cam_fn = ClassifierGradCAM(
            model, args.target_layer, affinity_layers=args.affinity_layers,
            affinity_temperature=args.affinity_temperature,
            affinity_box_threshold=args.affinity_box_threshold,
            affinity_power=args.affinity_power)
        preprocess = mmpretrain_preprocess(model)
        native = getattr(getattr(model.backbone, 'patch_embed', None), 'init_input_size', None)
    input_size = args.input_size or (int(native[0]) if native else 224)

    n = generate_cams(cam_fn, preprocess, items, args.out, input_size=input_size,
                      resolution=args.resolution, batch_size=args.batch_size,
                      shard=parse_shard(args.shard), num_workers=args.num_workers,
                      device=args.device, progress=not args.no_progress)
    print(f'wrote {n} CAM(s) to {args.out}')


if __name__ == '__main__':
    raise SystemExit(run_tool(main))
