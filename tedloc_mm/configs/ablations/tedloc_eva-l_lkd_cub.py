# Paper Table 2, row "L_KD" (CUB MaxBoxAcc 62.3): TeD-Loc trained with L_KD alone.
# With lambda_2 = lambda_3 = 0 the patch classifier g gets no training signal, so its map
# g(z) means nothing: this row scores the anchor map <z_p, t_y> of the true class y
# (map_type='anchor', anchor_map_label='gt'; the map of paper Table 4's caption), for
# model selection and test alike. Classification (Top-1 Loc) still comes from f(h).
_base_ = ['../tedloc_eva-l_cub.py']

model = dict(head=dict(lambda_patch=0.0, lambda_img=0.0, map_type='anchor',
                       anchor_map_label='gt'))
