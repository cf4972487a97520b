# The paper's ILSVRC schedule: SGD, 10 epochs, batch 32 (the batch size is set by the
# experiment config's train_dataloader). The paper searched lr in [1e-6, 0.01] and
# tuned momentum / weight decay without reporting the values; these are our defaults.
# Only the decoder and g train (see sgd_50e_cub.py).
optim_wrapper = dict(
    type='OptimWrapper',
    constructor='TrainableParamsOptimWrapperConstructor',
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=1e-4))
param_scheduler = []  # constant lr: the paper describes no decay

train_cfg = dict(by_epoch=True, max_epochs=10, val_interval=1)
val_cfg = dict()
test_cfg = dict()

auto_scale_lr = dict(base_batch_size=32)
