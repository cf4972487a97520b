# Paper Table 1's text row: "if we simplify the task for CLIP by using only the general
# “bird” class for all categories in the CUB dataset, the performance can increase by 4%
# when measuring MaxBoxAcc" (Section 4.2). CLIP-ES (GT-Known) on CUB with the text "bird"
# for each of the 200 classes: every image's map is CLIP-ES's Grad-CAM of "bird"
# (against the background words), whatever its species.
#   python tools/test.py configs/clip/clip-es_vit-b-16_gt_cub-bird.py none
# Only the localization columns that use the true class's map (MaxBoxAcc, MaxBoxAccV2,
# PxAP) mean anything here: the 200 class texts are identical, so the zero-shot scores
# are uniform and Top-1 Cls / Top-1 Loc are not a classification (argmax of ties).
_base_ = ['./clip-es_vit-b-16_gt_cub.py']
model = dict(class_names=['bird'] * 200)
