# Paper Table 1, first row: CLIP-ES (GT-Known) on ILSVRC (the 50k validation images of
# the wsolevaluation "test" split), zero-shot CLIP ViT-B/16.
#   python tools/test.py configs/clip/clip-es_vit-b-16_gt_ilsvrc.py none
#   (several GPUs: tools/dist_test.sh configs/clip/clip-es_vit-b-16_gt_ilsvrc.py none 8)
_base_ = [
    '../_base_/datasets/ilsvrc_wsol.py',
    '../_base_/default_runtime.py',
]
clip_checkpoint = 'checkpoints/clip/ViT-B-16.pt'

model = dict(
    type='tedloc.CLIPESLocalizer',
    clip=dict(model_name='ViT-B-16', checkpoint=clip_checkpoint),
    # OpenAI's readable ImageNet names (CLIP's own zero-shot class list), label order
    class_names='imagenet_openai',
    templates='openai_imagenet',
    cam_class='gt',
    cam=dict(templates='clip_es', softmax_over='label', image_pool='patch_mean',
             refine=True, attn_layers=8, box_threshold=0.4, scales=(1.0, ), flip=False))

train_dataloader = None
val_dataloader = None
val_evaluator = None
# the test's CAM-curve threshold step of the TeD-Loc configs (0.001, the authors' test
# setting): Table 1 and 4 rows scored on the same threshold grid
test_evaluator = dict(type='tedloc.WSOLMetric', eval_size=256, cam_curve_interval=0.001)
test_cfg = dict()
