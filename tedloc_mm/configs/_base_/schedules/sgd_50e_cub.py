# The paper's CUB schedule: SGD, 50 epochs, batch 16 (the batch size is set by the
# experiment config's train_dataloader). The paper searched lr in [1e-6, 0.01] and
# tuned momentum / weight decay without reporting the values; these are our defaults.
# Only the decoder and g train: the constructor hands the optimizer exactly the
# parameters with requires_grad (not the 303 M frozen EVA-L weights).
optim_wrapper = dict(
    type='OptimWrapper',
    constructor='TrainableParamsOptimWrapperConstructor',
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=1e-4))
param_scheduler = []  # constant lr: the paper describes no decay

train_cfg = dict(by_epoch=True, max_epochs=50, val_interval=5)
val_cfg = dict()
test_cfg = dict()

auto_scale_lr = dict(base_batch_size=16)
