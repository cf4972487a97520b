# Paper Table 1, second row: CLIP-ES (Pred) on ILSVRC: the map of CLIP's own top-1 class.
#   python tools/test.py configs/clip/clip-es_vit-b-16_pred_ilsvrc.py none
_base_ = ['./clip-es_vit-b-16_gt_ilsvrc.py']
model = dict(cam_class='pred')
