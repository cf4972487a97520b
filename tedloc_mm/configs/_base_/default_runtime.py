# Runtime defaults of tedloc_mm: MMPretrain's, with the overrides TeD-Loc needs.
_base_ = ['mmpretrain::_base_/default_runtime.py']

# Build our components and MMPretrain's/MMCV's by bare name.
default_scope = 'tedloc'
custom_imports = dict(imports=['tedloc_mm'], allow_failed_imports=False)

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    # keep only the last few regular checkpoints; experiment configs add
    # `save_best` on their localization metric.
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3),
)

# `nccl` needs GPUs; tools/train.py and tools/test.py switch to `gloo` when CUDA is
# absent, so the same config runs under tools/dist_*.sh on CPU processes too.
env_cfg = dict(dist_cfg=dict(backend='nccl'))

# Reproducible by default (the paper's runs are seeded); override with --cfg-options.
randomness = dict(seed=0, deterministic=False)
