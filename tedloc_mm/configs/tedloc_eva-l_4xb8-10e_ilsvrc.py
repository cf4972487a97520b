# configs/tedloc_eva-l_ilsvrc.py on 4 GPUs x 8 images = the paper's batch of 32:
#   tools/dist_train.sh configs/tedloc_eva-l_4xb8-10e_ilsvrc.py 4
_base_ = ['./tedloc_eva-l_ilsvrc.py']

train_dataloader = dict(batch_size=8)  # per process; auto_scale_lr.base_batch_size = 32
# the decoder's BatchNorm sees the whole batch of 32, not 8 per process
sync_bn = 'torch'
