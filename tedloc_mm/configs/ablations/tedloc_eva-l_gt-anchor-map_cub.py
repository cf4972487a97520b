# Paper Table 4, row "TeD-Loc (ours)" (CUB MaxBoxAcc 98.7, Top-1 Loc 92.0, Top-5 Loc
# 97.5): the trained full model's anchor map <z_p, t_y> with y the TRUE class (the
# table's caption), instead of g(z). Test time only: test the checkpoint trained with
# configs/tedloc_eva-l_cub.py,
#   python tools/test.py configs/ablations/tedloc_eva-l_gt-anchor-map_cub.py \
#       work_dirs/tedloc_eva-l_cub/best_wsol_MaxBoxAcc_epoch_N.pth
# Top-1/5 Loc still take the class from f(h).
_base_ = ['../tedloc_eva-l_cub.py']

model = dict(head=dict(map_type='anchor', anchor_map_label='gt'))
