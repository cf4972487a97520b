# The CAM baseline: the stage-1 classifier's Grad-CAM, evaluated with WSOLMetric.
#   python tools/test.py configs/synthetic/gradcam_eva02-tiny_synthetic.py \
#       work_dirs/synthetic_demo/classifier/iter_1500.pth
_base_ = ['./classifier_eva02-tiny_synthetic.py']

model = dict(type='GradCAMLocalizer', cam_class='gt')
val_evaluator = dict(type='WSOLMetric', _delete_=True)
test_evaluator = val_evaluator
custom_hooks = [dict(type='WSOLVisualizationHook', num_images=8, enable_val=False)]
