# CLIP-ES (GT-Known) on the synthetic benchmark with a random-initialised tiny CLIP:
# the offline check of configs/clip/clip-es_vit-b-16_gt_*.py (meaningless numbers).
#   python tools/test.py configs/clip/clip-es_tiny-random_gt_synthetic.py none \
#       --cfg-options test_dataloader.dataset.data_root=work_dirs/synthetic_demo/data
_base_ = ['./_base_/tiny_random_clip_synthetic.py']
model = dict(
    type='tedloc.CLIPESLocalizer', clip={{_base_.tiny_clip}},
    class_names={{_base_.synthetic_classes}},
    templates='openai_imagenet', cam_class='gt',
    cam=dict(templates='clip_es', softmax_over='label', image_pool='patch_mean',
             refine=True, attn_layers=8, box_threshold=0.4, scales=(1.0, ), flip=False))
