# Paper Table 5, row "w/o orthogonalization (default anchors)" (CUB MaxBoxAcc 97.73,
# CL 56.00, Top-1 Loc 54.84, Top-5 Loc 85.79): the CLIP text embeddings used as anchors
# as they are, not QR-orthogonalised. Row "w/ orthogonalization" is
# configs/tedloc_eva-l_cub.py.
_base_ = ['../tedloc_eva-l_cub.py']

model = dict(head=dict(orthogonalization='none'))
