# Paper Table 4, "NACLIP" row on ILSVRC: <z_p, t_y> with NACLIP's last block (kk^T attention
# plus a Gaussian neighbourhood of sigma 5 patches; no residual, no MLP).
#   python tools/test.py configs/clip/naclip_vit-b-16_patch-text_ilsvrc.py none
_base_ = ['./clip_vit-b-16_patch-text_ilsvrc.py']
model = dict(last_attention='naclip', naclip_std=5.0)
