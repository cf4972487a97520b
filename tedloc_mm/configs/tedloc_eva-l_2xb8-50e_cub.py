# configs/tedloc_eva-l_cub.py on 2 GPUs x 8 images = the paper's batch of 16:
#   tools/dist_train.sh configs/tedloc_eva-l_2xb8-50e_cub.py 2
_base_ = ['./tedloc_eva-l_cub.py']

train_dataloader = dict(batch_size=8)  # per process; auto_scale_lr.base_batch_size = 16
# the decoder's BatchNorm sees the whole batch of 16, not 8 per process
sync_bn = 'torch'
