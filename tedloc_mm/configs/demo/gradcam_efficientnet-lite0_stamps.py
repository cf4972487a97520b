# The CAM baseline of the demo: Grad-CAM of the stage-1 linear probe, evaluated with
# WSOLMetric (for a global-average-pooled linear head, Grad-CAM at the last conv is CAM).
#   python tools/test.py configs/demo/gradcam_efficientnet-lite0_stamps.py \
#       work_dirs/stamp_demo/classifier/linear_probe.pth
_base_ = ['./linear-probe_efficientnet-lite0_stamps.py']

# backbone.bn2: BN + ReLU6 after the 1280-wide head conv, the map the head pools
model = dict(type='tedloc.GradCAMLocalizer', cam_class='gt', target_layer='backbone.bn2')
val_evaluator = dict(type='tedloc.WSOLMetric', _delete_=True)
test_evaluator = val_evaluator
# overlays of the first 8 test images (our default_hooks.visualization)
default_hooks = dict(visualization=dict(enable=True, num_images=8, enable_val=False))
# evaluation only (the linear probe is fitted by tools/train_linear_probe.py, not the Runner)
train_dataloader = None
val_cfg = dict()
test_cfg = dict()
