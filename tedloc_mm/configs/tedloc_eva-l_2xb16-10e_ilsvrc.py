# configs/tedloc_eva-l_ilsvrc.py on 2 GPUs x 16 images = the paper's batch of 32:
#   tools/dist_train.sh configs/tedloc_eva-l_2xb16-10e_ilsvrc.py 2
_base_ = ['./tedloc_eva-l_ilsvrc.py']

train_dataloader = dict(batch_size=16)  # per process; auto_scale_lr.base_batch_size = 32
# the decoder's BatchNorm sees the whole batch of 32, not 16 per process
sync_bn = 'torch'
