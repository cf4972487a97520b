"""The frozen-feature cache: same losses and maps as without it, the encoder run once
per image and flip, and the hook's refusal of pipelines that make the cache stale."""
from types import SimpleNamespace

import pytest
import torch
from mmengine.dataset import Compose
from mmengine.logging import MMLogger
from mmengine.registry import DefaultScope

from tedloc_mm.engine import FrozenFeatureCacheHook, check_pipeline_cacheable
from tiny_tedloc import batch, tiny_model

TRAIN_PIPELINE = [
    dict(type='LoadWSOLImage'),
    dict(type='LoadCAM', cam_store='unused'),
    dict(type='WSOLRandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PseudoLabelSampler', grid_stride=8),
    dict(type='PackWSOLInputs'),
]
VAL_PIPELINE = [
    dict(type='LoadWSOLImage'),
    dict(type='LoadWSOLAnnotations'),
    dict(type='WSOLResize', scale=(224, 224)),
    dict(type='PackWSOLInputs'),
]


def count_encoder_calls(model):
    calls = []
    model.backbone.register_forward_hook(lambda m, args, out: calls.append(args[0].shape[0]))
    return calls


def test_cached_features_give_the_same_losses_and_skip_the_encoder():
    model = tiny_model()
    model.train()
    data = batch(model, n=3)
    calls = count_encoder_calls(model)
    plain = model(**data, mode='loss')
    model.feature_cache = {}
    first = model(**data, mode='loss')    # fills the cache: one encoder call
    second = model(**data, mode='loss')   # all three from the cache: none
    assert calls == [3, 3]
    assert len(model.feature_cache) == 3
    for k in plain:
        torch.testing.assert_close(first[k], plain[k])
        torch.testing.assert_close(second[k], plain[k])
    # gradients still reach the decoder through cached features
    sum(second.values()).backward()
    assert model.neck.proj.weight.grad.abs().sum() > 0


def test_a_flipped_sample_or_another_mode_is_a_miss_and_only_it_is_encoded():
    model = tiny_model()
    model.feature_cache = {}
    data = batch(model, n=3)
    model.train()
    model(**data, mode='loss')
    calls = count_encoder_calls(model)
    data['data_samples'][1].set_metainfo(dict(flip=True, flip_direction='horizontal'))
    flipped = data['inputs'].clone()
    flipped[1] = flipped[1].flip(-1)
    losses = model(inputs=flipped, data_samples=data['data_samples'], mode='loss')
    assert calls == [1]  # only the flipped sample went through the encoder
    model.feature_cache = None
    torch.testing.assert_close(losses, model(inputs=flipped,
                                             data_samples=data['data_samples'],
                                             mode='loss'))
    model.feature_cache = {}
    model.eval()
    with torch.no_grad():
        model(**data, mode='predict')
        model(**data, mode='loss')  # the same ids under another mode: separate keys
    assert {k[0] for k in model.feature_cache} == {'predict', 'loss'}


def test_cache_refuses_an_unfrozen_backbone():
    model = tiny_model()
    model.backbone.frozen = False
    model.feature_cache = {}
    with pytest.raises(RuntimeError, match='not frozen'):
        model(**batch(model), mode='loss')


def fake_runner(model, train_pipeline, val_pipeline=VAL_PIPELINE):
    with DefaultScope.overwrite_default_scope('tedloc'):
        train = SimpleNamespace(pipeline=Compose(train_pipeline))
        val = SimpleNamespace(pipeline=Compose(val_pipeline))
    return SimpleNamespace(model=model, train_dataloader=SimpleNamespace(dataset=train),
                           val_dataloader=SimpleNamespace(dataset=val), val_loop=object(),
                           logger=MMLogger.get_current_instance())


def test_hook_turns_the_cache_on_for_flip_only_pipelines_and_off_after_training():
    model = tiny_model()
    hook = FrozenFeatureCacheHook()
    runner = fake_runner(model, TRAIN_PIPELINE)
    hook.before_train(runner)
    assert model.feature_cache == {}
    model.feature_cache['x'] = 1
    hook.before_val(runner)
    assert model.feature_cache == {'x': 1}  # val cached too (cache_val=True)
    hook.after_val(runner)
    hook.after_train(runner)
    assert model.feature_cache is None
    hook = FrozenFeatureCacheHook(cache_val=False)
    hook.before_train(runner)
    hook.before_val(runner)
    assert model.feature_cache is None  # validation runs without the cache
    hook.after_val(runner)
    assert model.feature_cache == {}


@pytest.mark.parametrize('transform,name', [
    (dict(type='WSOLRandomResizedCrop', scale=224), 'WSOLRandomResizedCrop'),
    (dict(type='WSOLRandomCrop', crop_size=200), 'WSOLRandomCrop'),
    (dict(type='ColorJitter', brightness=0.4), 'ColorJitter'),
])
def test_hook_refuses_random_geometric_or_photometric_transforms(transform, name):
    model = tiny_model()
    pipeline = TRAIN_PIPELINE[:3] + [transform] + TRAIN_PIPELINE[3:]
    with pytest.raises(ValueError, match=f'train pipeline has {name}'):
        FrozenFeatureCacheHook().before_train(fake_runner(model, pipeline))
    assert model.feature_cache is None
    with pytest.raises(ValueError, match=f'val pipeline has {name}'):
        FrozenFeatureCacheHook().before_train(
            fake_runner(model, TRAIN_PIPELINE, VAL_PIPELINE[:3] + [transform]))


def test_hook_refuses_a_resize_by_factor_and_an_unfrozen_backbone():
    model = tiny_model()
    with pytest.raises(ValueError, match='fixed scale'):
        check_pipeline_cacheable(fake_runner(model, TRAIN_PIPELINE, [
            dict(type='LoadWSOLImage'), dict(type='WSOLResize', scale_factor=0.5),
            dict(type='PackWSOLInputs')]).val_dataloader.dataset, 'val')
    model.backbone.frozen = False
    with pytest.raises(ValueError, match='not frozen'):
        FrozenFeatureCacheHook().before_train(fake_runner(model, TRAIN_PIPELINE))
