# The paper's CUB schedule: SGD, 50 epochs ("50 epochs for the CUB dataset", §4.1),
# batch 16 in all (the experiment config's train_dataloader; per process in MMEngine,
# so multi-GPU variants divide it: tedloc_eva-l_NxbM-50e_cub.py with N x M = 16).
# The optimizer: _base_/schedules/sgd_authors.py (the authors' TrCAM run).
_base_ = ['./sgd_authors.py']

# validated every epoch, as the authors' code does (TrCAM main.py)
train_cfg = dict(by_epoch=True, max_epochs=50, val_interval=1)
val_cfg = dict()
test_cfg = dict()

# the total batch the lr is set for; tools/train.py --auto-scale-lr scales the lr by
# (processes x per-process batch) / 16 for any other total
auto_scale_lr = dict(base_batch_size=16)
