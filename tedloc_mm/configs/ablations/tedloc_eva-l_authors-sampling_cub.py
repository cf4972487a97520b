# configs/tedloc_eva-l_cub.py with the authors' pseudo-label sampling instead of ours:
# the values of the TrCAM run in the TrCAM README (README.md:94-154, commit c4685e3:
# --sl_tc_min 1 --sl_tc_max 1 --sl_tc_ksz 3 --sl_tc_max_p 0.6 --sl_tc_min_p 0.1
# --sl_tc_seed_tech seed_weighted --sl_tc_use_roi True --sl_tc_roi_method roi_all),
# implemented as in dlib/cams/tcam_seeding.py (see PseudoLabelSampler's docstring):
# per image and step, one FG pixel drawn with probability proportional to the CAM among
# the top 60 % of the Otsu region, one BG pixel drawn uniformly among the bottom 10 % of
# the whole image, each grown to 3 x 3, at full resolution (grid_stride=1). The decoder
# keeps its stride-4 grid: the head maps each sampled input pixel to its decoder cell.
# Ours (the paper config): 16 FG + 16 BG cells of the 56 x 56 grid from the top / bottom
# 50 %, which supervises far more area per step.
_base_ = ['../tedloc_eva-l_cub.py']

authors_sampler = dict(type='PseudoLabelSampler', grid_stride=1, num_fg_candidates=0.6,
                       num_bg_candidates=0.1, bg_source='image', num_samples=1,
                       fg_draw='cam_weighted', grow_kernel=3)
train_pipeline = [
    dict(type='LoadWSOLImage'),
    dict(type='LoadCAM'),
    dict(type='WSOLResize', scale=(256, 256)),
    dict(type='WSOLRandomCrop', crop_size=224),
    dict(type='WSOLRandomFlip', prob=0.5, direction='horizontal'),
    authors_sampler,
    dict(type='PackWSOLInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
