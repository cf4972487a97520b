# A tiny random-initialised open_clip ViT for the synthetic zero-shot configs: they run
# offline (no CLIP weights here) and check the pipeline end to end; their numbers carry
# no meaning. 96 px inputs, patch 8: a 12 x 12 grid.
_base_ = [
    '../../_base_/datasets/synthetic_wsol.py',
    '../../_base_/default_runtime.py',
]
tiny_clip = dict(
    model_name='ViT-B-16', checkpoint=None, random_init=True, seed=0,
    embed_dim=64,
    vision_cfg=dict(image_size=96, layers=3, width=64, patch_size=8, head_width=32),
    text_cfg=dict(context_length=32, vocab_size=49408, width=64, heads=2, layers=1))
# tedloc_mm.embedded_benchmarks.gliders.class_names(8), the demo's classes
synthetic_classes = [
    'red round-headed glider', 'yellow spike-headed glider', 'cyan box-headed glider',
    'magenta cross-headed glider', 'orange ring-headed glider', 'white star-headed glider',
    'red spike-headed glider', 'yellow box-headed glider'
]
train_dataloader = None
val_dataloader = None
val_evaluator = None
test_cfg = dict()
