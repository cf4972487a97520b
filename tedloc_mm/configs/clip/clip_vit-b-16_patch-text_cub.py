# Paper Table 4, "Vanilla CLIP" row on CUB: the map <z_p, t_y> of CLIP's own patch
# embeddings and the text embedding of the true class (cosine; Appendix B.1). Top-k
# scores: CLIP's zero-shot classification of the same forward pass.
#   python tools/test.py configs/clip/clip_vit-b-16_patch-text_cub.py none
_base_ = [
    '../_base_/datasets/cub_wsol.py',
    '../_base_/default_runtime.py',
]
clip_checkpoint = 'checkpoints/clip/ViT-B-16.pt'

model = dict(
    type='tedloc.CLIPPatchTextLocalizer',
    clip=dict(model_name='ViT-B-16', checkpoint=clip_checkpoint),
    class_names='cub',
    templates='openai_imagenet',   # the 80 prompts SCLIP and NACLIP embed classes with
    last_attention='vanilla',
    map_class='gt',
    score_source='same')

train_dataloader = None
val_dataloader = None
val_evaluator = None
# the test's CAM-curve threshold step of the TeD-Loc configs (0.001, the authors' test
# setting): Table 1 and 4 rows scored on the same threshold grid
test_evaluator = dict(type='tedloc.WSOLMetric', eval_size=256, cam_curve_interval=0.001)
test_cfg = dict()
