# <z_p, t_y> of a random-initialised tiny CLIP on the synthetic benchmark: the offline
# check of configs/clip/{clip,sclip,naclip}_vit-b-16_patch-text_*.py (meaningless numbers).
#   python tools/test.py configs/clip/clip_tiny-random_patch-text_synthetic.py none \
#       --cfg-options test_dataloader.dataset.data_root=work_dirs/synthetic_demo/data
_base_ = ['./_base_/tiny_random_clip_synthetic.py']
model = dict(
    type='tedloc.CLIPPatchTextLocalizer', clip={{_base_.tiny_clip}},
    class_names={{_base_.synthetic_classes}}, templates='openai_imagenet',
    last_attention='vanilla', map_class='gt', score_source='same')
