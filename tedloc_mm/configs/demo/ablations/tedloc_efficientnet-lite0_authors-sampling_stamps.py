# The demo's TeD-Loc (../tedloc_efficientnet-lite0_stamps.py) trained with the authors'
# pseudo-label sampling instead of ours (configs/ablations/tedloc_eva-l_authors-sampling_cub.py
# on CUB; values of the TrCAM README run, implemented as in TrCAM dlib/cams/tcam_seeding.py,
# see PseudoLabelSampler's docstring): per image and step one FG pixel drawn with
# probability proportional to the CAM among the top 60 % of the Otsu region, one BG pixel
# drawn uniformly among the bottom 10 % of the whole image, each grown to 3 x 3, at the
# input's full resolution (grid_stride=1, 224 x 224). The decoder keeps the demo's
# 28 x 28 grid: the head maps each sampled pixel to its decoder cell. The demo's own
# sampling: 16 FG + 16 BG cells of the 28 x 28 grid from the top / bottom 50 %.
# Only what the row changes is set here. Run by: bash tools/run_demo.sh --ablations
_base_ = ['../tedloc_efficientnet-lite0_stamps.py']

authors_sampler = dict(type='PseudoLabelSampler', grid_stride=1,
                       num_fg_candidates=0.6, num_bg_candidates=0.1, bg_source='image',
                       num_samples=1, fg_draw='cam_weighted', grow_kernel=3)
train_pipeline = [
    dict(type='LoadWSOLImage'),
    dict(type='LoadCAM'),
    dict(type='WSOLRandomFlip', prob=0.5, direction='horizontal'),
    authors_sampler,
    dict(type='PackWSOLInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
