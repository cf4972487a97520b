# SCLIP's last attention, random tiny CLIP, synthetic benchmark (offline check only).
_base_ = ['./clip_tiny-random_patch-text_synthetic.py']
model = dict(last_attention='sclip')
