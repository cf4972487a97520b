# configs/tedloc_eva-l_cub.py on 4 GPUs x 4 images = the paper's batch of 16:
#   tools/dist_train.sh configs/tedloc_eva-l_4xb4-50e_cub.py 4
_base_ = ['./tedloc_eva-l_cub.py']

train_dataloader = dict(batch_size=4)  # per process; auto_scale_lr.base_batch_size = 16
# the decoder's BatchNorm sees the whole batch of 16, not 4 per process
sync_bn = 'torch'
