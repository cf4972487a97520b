# Paper Table 1, first row: CLIP-ES (GT-Known) on CUB-200-2011, zero-shot CLIP ViT-B/16.
# The localization map is CLIP-ES's Grad-CAM (CAA-refined) of the ground-truth class;
# the Top-k scores are CLIP's zero-shot classification. Nothing is trained:
#   python tools/test.py configs/clip/clip-es_vit-b-16_gt_cub.py none
# Weights: OpenAI's ViT-B-16.pt (the TorchScript archive CLIP-ES and the TeD-Loc authors
# load) or an open_clip ViT-B-16-quickgelu file, at `clip_checkpoint` (or
# --cfg-options model.clip.checkpoint=/path/to/ViT-B-16.pt).
_base_ = [
    '../_base_/datasets/cub_wsol.py',
    '../_base_/default_runtime.py',
]
clip_checkpoint = 'checkpoints/clip/ViT-B-16.pt'

model = dict(
    type='tedloc.CLIPESLocalizer',
    clip=dict(model_name='ViT-B-16', checkpoint=clip_checkpoint),
    # CUB's folder names ("Black footed Albatross"), in label order
    class_names='cub',
    templates='openai_imagenet',  # the zero-shot classifier's prompts (Top-k scores)
    cam_class='gt',
    # CLIP-ES as published (defaults written out): [y, background] softmax target,
    # patch-mean image embedding, CAA on the mean attention of the last 8 layers
    cam=dict(templates='clip_es', softmax_over='label', image_pool='patch_mean',
             refine=True, attn_layers=8, box_threshold=0.4, scales=(1.0, ), flip=False))

# test only: no training or validation loop
train_dataloader = None
val_dataloader = None
val_evaluator = None
# the test's CAM-curve threshold step of the TeD-Loc configs (0.001, the authors' test
# setting): Table 1 and 4 rows scored on the same threshold grid
test_evaluator = dict(type='tedloc.WSOLMetric', eval_size=256, cam_curve_interval=0.001)
test_cfg = dict()
