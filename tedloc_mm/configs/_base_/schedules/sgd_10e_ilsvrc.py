# The paper's ILSVRC schedule: SGD, 10 epochs ("10 epochs for ILSVRC", §4.1), batch 32
# in all (the experiment config's train_dataloader; per process in MMEngine, so
# multi-GPU variants divide it: tedloc_eva-l_NxbM-10e_ilsvrc.py with N x M = 32).
# The optimizer: _base_/schedules/sgd_authors.py (the authors' TrCAM run; its step of
# 15 epochs keeps the lr constant over 10).
_base_ = ['./sgd_authors.py']

# validated every epoch, as the authors' code does (TrCAM main.py)
train_cfg = dict(by_epoch=True, max_epochs=10, val_interval=1)
val_cfg = dict()
test_cfg = dict()

auto_scale_lr = dict(base_batch_size=32)
