# configs/tedloc_eva-l_cub.py on 8 GPUs x 2 images = the paper's batch of 16:
#   tools/dist_train.sh configs/tedloc_eva-l_8xb2-50e_cub.py 8
_base_ = ['./tedloc_eva-l_cub.py']

train_dataloader = dict(batch_size=2)  # per process; auto_scale_lr.base_batch_size = 16
# the decoder's BatchNorm sees the whole batch of 16, not 2 per process
sync_bn = 'torch'
