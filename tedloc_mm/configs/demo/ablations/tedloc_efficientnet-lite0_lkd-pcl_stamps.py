# The demo's TeD-Loc (../tedloc_efficientnet-lite0_stamps.py) without I_CL (lambda_3 = 0):
# paper Table 2, row "L_KD + P_CL" (configs/ablations/tedloc_eva-l_lkd-pcl_cub.py on CUB).
# Only what the row changes is set here. Run by: bash tools/run_demo.sh --ablations
_base_ = ['../tedloc_efficientnet-lite0_stamps.py']

model = dict(head=dict(lambda_img=0.0))
