# Variant, not the paper's encoder: configs/tedloc_eva-l_cub.py with EVA-02-L/14
# fine-tuned for ImageNet-1k classification (the paper's encoder is EVA-01-L).
# The weights: BAAI's eva02_L_pt_m38m_medft_in21k_ft_in1k_p14.pt (= timm's
# eva02_large_patch14_448.mim_m38m_ft_in22k_in1k; 448 px, its 32 x 32 position grid
# resized to 16 x 16) converted with
#   python tools/model_converters/eva_to_mmpretrain.py --variant eva02 \
#       eva02_L_pt_m38m_medft_in21k_ft_in1k_p14.pt checkpoints/eva02-l-p14-in1k_mmpretrain.pth
# (eva02_L_pt_m38m_p14.pt is masked-image-modelling only, not a classifier.)
_base_ = ['./tedloc_eva-l_cub.py']

model = dict(backbone=dict(variant='eva02',
                           checkpoint='checkpoints/eva02-l-p14-in1k_mmpretrain.pth'))
