# NACLIP's last block, random tiny CLIP, synthetic benchmark (offline check only).
_base_ = ['./clip_tiny-random_patch-text_synthetic.py']
model = dict(last_attention='naclip', naclip_std=5.0)
