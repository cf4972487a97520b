# configs/tedloc_eva-l_ilsvrc.py on 8 GPUs x 4 images = the paper's batch of 32:
#   tools/dist_train.sh configs/tedloc_eva-l_8xb4-10e_ilsvrc.py 8
_base_ = ['./tedloc_eva-l_ilsvrc.py']

train_dataloader = dict(batch_size=4)  # per process; auto_scale_lr.base_batch_size = 32
# the decoder's BatchNorm sees the whole batch of 32, not 4 per process
sync_bn = 'torch'
