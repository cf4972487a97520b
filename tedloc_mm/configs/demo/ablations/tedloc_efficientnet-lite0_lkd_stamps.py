# The demo's TeD-Loc (../tedloc_efficientnet-lite0_stamps.py) trained with L_KD alone:
# paper Table 2, row "L_KD" (configs/ablations/tedloc_eva-l_lkd_cub.py on CUB).
# g gets no training signal (lambda_2 = lambda_3 = 0), so this row scores the anchor map
# <z_p, t_y> of the true class y (selection and test). Only what the row changes is set
# here; everything else is the demo's. Run by: bash tools/run_demo.sh --ablations
_base_ = ['../tedloc_efficientnet-lite0_stamps.py']

model = dict(head=dict(lambda_patch=0.0, lambda_img=0.0, map_type='anchor',
                       anchor_map_label='gt'))
