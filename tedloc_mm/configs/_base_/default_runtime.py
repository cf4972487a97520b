# Runtime defaults of tedloc_mm: MMPretrain's, with the overrides TeD-Loc needs.
_base_ = ['mmpretrain::_base_/default_runtime.py']

# Build our components and MMPretrain's/MMCV's by bare name.
default_scope = 'tedloc'
custom_imports = dict(imports=['tedloc_mm'], allow_failed_imports=False)

# default_hooks, not custom_hooks: inheritance merges these by name (a config that
# replaces custom_hooks keeps them), and every tool that builds a Runner from the config
# (ours, MMPretrain's tools/train.py / test.py, Runner.from_cfg) gets them.
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    # keep only the last few regular checkpoints; experiment configs add
    # `save_best` on their localization metric.
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3),
    # testing or validating a checkpoint without the model's weights is an error
    # (training from a partial load_from is not checked)
    checkpoint_weights=dict(type='tedloc.CheckpointWeightsHook'),
    # curves.png (+ TensorBoard) when the test WSOLMetric has an analysis_dir
    curves=dict(type='tedloc.WSOLCurvesHook'),
    # our overlays; off until a config or MMPretrain's test.py --show-dir / --show
    # switches it on (enable, out_dir, interval, show, wait_time)
    visualization=dict(type='tedloc.WSOLVisualizationHook', enable=False),
)

# `nccl` needs GPUs; tools/train.py and tools/test.py switch to `gloo` when CUDA is
# absent, so the same config runs under tools/dist_*.sh on CPU processes too.
env_cfg = dict(dist_cfg=dict(backend='nccl'))

# Reproducible by default (the paper's runs are seeded); override with --cfg-options.
randomness = dict(seed=0, deterministic=False)
