# The demo's TeD-Loc (../tedloc_efficientnet-lite0_stamps.py) with the text embeddings
# as anchors, not QR-orthogonalised: paper Table 5, row "w/o orthogonalization"
# (configs/ablations/tedloc_eva-l_no-qr_cub.py on CUB). The demo's anchors come from a
# random-initialised text tower, so this measures only what orthogonality does to K
# random directions. Only what the row changes is set here.
# Run by: bash tools/run_demo.sh --ablations
_base_ = ['../tedloc_efficientnet-lite0_stamps.py']

model = dict(head=dict(orthogonalization='none'))
