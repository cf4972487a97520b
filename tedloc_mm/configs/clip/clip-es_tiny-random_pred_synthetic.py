# CLIP-ES (Pred) on the synthetic benchmark, random tiny CLIP (offline check only).
_base_ = ['./clip-es_tiny-random_gt_synthetic.py']
model = dict(cam_class='pred')
