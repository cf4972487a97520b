# Paper Table 4, "SCLIP" row on CUB: <z_p, t_y> with SCLIP's correlative self-attention
# in the last block (softmax(qq^T) + softmax(kk^T); residual and MLP kept).
#   python tools/test.py configs/clip/sclip_vit-b-16_patch-text_cub.py none
_base_ = ['./clip_vit-b-16_patch-text_cub.py']
model = dict(last_attention='sclip')
