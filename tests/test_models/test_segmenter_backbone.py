"""The frozen encoder as an MMSegmentation backbone: its outputs reach the decode head as
MMSegmentation expects, a tuple of feature maps from which ``in_index`` selects a map
(never an image of the batch). Built from the installed segmenter config's model."""
import copy

import pytest
import torch

import tedloc_mm
from mmengine.config import Config

CONFIG = tedloc_mm.config_path('demo/fcn_frozen-efficientnet-lite0_stamps-seg.py')


def build(**head):
    """EncoderDecoder of the config (random weights: init_weights is not called),
    eval mode, decode head options overridden by ``head``."""
    from mmengine.registry import DefaultScope
    from mmseg.registry import MODELS
    cfg = copy.deepcopy(Config.fromfile(CONFIG).model)
    cfg.decode_head.update(head)
    with DefaultScope.overwrite_default_scope('mmseg'):
        model = MODELS.build(cfg)
    return model.eval()


@pytest.fixture(scope='module')
def images():
    g = torch.Generator().manual_seed(0)
    return torch.rand(3, 3, 64, 64, generator=g) * 2 - 1  # 3 different images


def test_backbone_returns_a_tuple_of_stage_maps(images):
    model = build()
    assert model.backbone.out_channels == (112, 1280)
    assert model.backbone.out_stride == (16, 32)
    feats = model.extract_feat(images)
    assert isinstance(feats, tuple) and len(feats) == 2
    assert tuple(feats[0].shape) == (3, 112, 4, 4)
    assert tuple(feats[1].shape) == (3, 1280, 2, 2)


@pytest.mark.parametrize('in_index, channels', [(0, 112), (1, 1280)])
def test_in_index_selects_a_feature_map_of_the_whole_batch(images, in_index, channels):
    model = build(in_index=in_index, in_channels=channels, input_transform=None)
    feats = model.extract_feat(images)
    head_input = model.decode_head._transform_inputs(feats)
    assert head_input.dim() == 4 and head_input.shape[0] == 3  # all images, not image 0
    assert torch.equal(head_input, feats[in_index])
    logits = model.encode_decode(images, [dict(img_shape=(64, 64))] * 3)
    assert tuple(logits.shape) == (3, 7, 64, 64)


def test_each_image_is_segmented_on_its_own_features(images):
    model = build()
    meta = [dict(img_shape=(64, 64))]
    with torch.no_grad():
        batch = model.encode_decode(images, meta * 3)
        alone = torch.cat([model.encode_decode(images[i:i + 1], meta) for i in range(3)])
    torch.testing.assert_close(batch, alone, rtol=1e-4, atol=1e-4)
    assert not torch.allclose(batch[0], batch[1])


def test_resize_concat_equals_the_encoders_own_concat(images):
    """MMSegmentation's resize_concat of the two stages is FrozenBackbone's
    fuse='concat' (the 1392-channel stride-16 map TeD-Loc's configs use)."""
    from tedloc_mm.models import FrozenBackbone
    model = build()
    concat = FrozenBackbone(backbone=model.backbone.encoder, fuse='concat').eval()
    head_input = model.decode_head._transform_inputs(model.extract_feat(images))
    torch.testing.assert_close(head_input, concat(images))
    assert head_input.shape[1] == 1392
