# The demo's trained TeD-Loc (../tedloc_efficientnet-lite0_stamps.py) scored with the
# anchor map <z_p, t_y> of the TRUE class y instead of g(z): paper Table 4's map
# (configs/ablations/tedloc_eva-l_gt-anchor-map_cub.py). Test time only; it puts the
# full method on the same map as the L_KD-alone row. Run by: bash tools/run_demo.sh --ablations
_base_ = ['../tedloc_efficientnet-lite0_stamps.py']

model = dict(head=dict(map_type='anchor', anchor_map_label='gt'))
