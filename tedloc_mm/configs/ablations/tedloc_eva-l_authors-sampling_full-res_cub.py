# tedloc_eva-l_authors-sampling_cub.py with a full-resolution decoder (out_stride=1,
# 224 x 224 pixel embeddings), as the authors' localizer decodes to the input size
# (TrCAM dlib/visiontransformer/vit_models.py, about lines 42-53): the sampled pixels
# are then the decoder's own cells, one loss term per pixel, none sharing a cell.
# Cost (benchmarks/decoder_resolution_cost.py; docs/en/paper_and_implementation.md,
# "Decoder resolution: cost"): decoder + head step 11.6x and peak memory 13.6x those of
# the stride-4 default (13.6 GB at batch 16, measured on CPU); a GPU with less memory
# accumulates the batch (optim_wrapper.accumulative_counts).
_base_ = ['./tedloc_eva-l_authors-sampling_cub.py']

model = dict(neck=dict(out_stride=1))
