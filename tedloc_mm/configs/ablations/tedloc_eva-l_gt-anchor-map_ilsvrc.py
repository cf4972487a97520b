# Paper Table 4, row "TeD-Loc (ours)" (ILSVRC MaxBoxAcc 77.18, Top-1 Loc 71.8, Top-5 Loc
# 76.7): the trained full model's anchor map <z_p, t_y> with y the TRUE class (the
# table's caption), instead of g(z). Test time only: test the checkpoint trained with
# configs/tedloc_eva-l_ilsvrc.py,
#   python tools/test.py configs/ablations/tedloc_eva-l_gt-anchor-map_ilsvrc.py \
#       work_dirs/tedloc_eva-l_ilsvrc/best_wsol_MaxBoxAcc_epoch_N.pth
# Top-1/5 Loc still take the class from f(h).
_base_ = ['../tedloc_eva-l_ilsvrc.py']

model = dict(head=dict(map_type='anchor', anchor_map_label='gt'))
