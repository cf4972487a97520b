# Paper Table 2, row "L_KD + P_CL" (CUB MaxBoxAcc 95.4): TeD-Loc without the image-class
# loss I_CL (lambda_3 = 0); the map is g(z) as in the full method.
# Row "L_KD + P_CL + I_CL" (98.7) is configs/tedloc_eva-l_cub.py itself.
_base_ = ['../tedloc_eva-l_cub.py']

model = dict(head=dict(lambda_img=0.0))
