"""FrozenFeatureCacheHook: compute the frozen encoder once per image and flip (opt-in).

TeD-Loc's encoder is frozen, so with a training pipeline of deterministic steps and
flips only, the encoder sees at most two distinct inputs per training image; every
further epoch recomputes the same features. With

    custom_hooks = [..., dict(type='FrozenFeatureCacheHook')]

the Runner keeps each sample's encoder output E(x) in memory for the training run
(``TeDLoc.feature_cache``, keyed by mode, image id, flip, shapes), so that an epoch
after the first ones costs only the decoder and the head; with ``cache_val=True``
(default) the validation split's features are kept too, so that every validation after
the first skips the encoder.

The hook refuses (``ValueError`` naming the transform) any pipeline with a transform
outside :data:`CACHE_SAFE_TRANSFORMS`: a random crop, a random resize or a colour
jitter gives a new input at each draw that a cache keyed by image and flip would
silently replace with a stale one. It also refuses a backbone that is not frozen.

Memory: one (C, h, w) float32 tensor per image and flip; the demo's EfficientNet-Lite0
stages 5 + 8 (1392 x 14 x 14) take 1.1 MB each (360 train images x 2 flips + 420 val
images: about 1.2 GB).
"""
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from tedloc_mm.registry import HOOKS

#: transforms whose output image depends only on the file (and the recorded flip):
#: loading, fixed resizes, flips (``flip`` / ``flip_direction`` are in the cache key),
#: pseudo-label sampling (random, but it does not touch the image), packing
CACHE_SAFE_TRANSFORMS = frozenset({
    'LoadWSOLImage', 'LoadImageFromFile', 'LoadCAM', 'LoadWSOLAnnotations',
    'WSOLResize', 'Resize', 'WSOLRandomFlip', 'RandomFlip', 'PseudoLabelSampler',
    'PackWSOLInputs', 'PackInputs'})
#: of those, the ones whose randomness a fixed argument can still add
_RESIZES = ('WSOLResize', 'Resize')


def check_pipeline_cacheable(dataset, split: str) -> None:
    """Raise ``ValueError`` unless every transform of ``dataset``'s pipeline keeps
    the encoder input a function of (image, flip)."""
    while not hasattr(dataset, 'pipeline') and hasattr(dataset, 'dataset'):
        dataset = dataset.dataset  # RepeatDataset, ClassBalancedDataset, ...
    pipeline = getattr(dataset, 'pipeline', None)
    transforms = getattr(pipeline, 'transforms', None)
    if transforms is None:
        raise ValueError(f'FrozenFeatureCacheHook: cannot read the {split} pipeline of '
                         f'{type(dataset).__name__}, so cannot check that caching is valid')
    for t in transforms:
        name = type(t).__name__
        if name not in CACHE_SAFE_TRANSFORMS:
            raise ValueError(
                f'FrozenFeatureCacheHook: the {split} pipeline has {name}, which may give '
                'a different input for the same image and flip; the cache would return '
                'stale features. Remove the hook (or the transform); cache-safe '
                f'transforms: {", ".join(sorted(CACHE_SAFE_TRANSFORMS))}')
        if name in _RESIZES and (getattr(t, 'scale', None) is None
                                 or getattr(t, 'scale_factor', None) is not None):
            raise ValueError(f'FrozenFeatureCacheHook: {name} in the {split} pipeline '
                             'must resize to a fixed scale')


@HOOKS.register_module()
class FrozenFeatureCacheHook(Hook):
    """Cache the frozen encoder's output per image and flip during training.

    Args:
        cache_val: also cache the validation split (its pipeline is checked too).
    """

    priority = 'NORMAL'

    def __init__(self, cache_val: bool = True):
        self.cache_val = cache_val
        self._val_on = False

    @staticmethod
    def _model(runner):
        model = runner.model
        return model.module if is_model_wrapper(model) else model

    def before_train(self, runner) -> None:
        model = self._model(runner)
        if not hasattr(model, 'feature_cache'):
            raise TypeError(f'FrozenFeatureCacheHook: {type(model).__name__} has no '
                            'feature_cache (TeDLoc has)')
        if not getattr(model.backbone, 'frozen', False):
            raise ValueError('FrozenFeatureCacheHook: the backbone is not frozen; cached '
                             'features would go stale as it trains')
        check_pipeline_cacheable(runner.train_dataloader.dataset, 'train')
        self._val_on = False
        if self.cache_val and runner.val_loop is not None:
            check_pipeline_cacheable(runner.val_dataloader.dataset, 'val')
            self._val_on = True
        model.feature_cache = {}

    def before_val(self, runner) -> None:
        # a validation outside this training run (or with cache_val=False) must not
        # fill the cache: only the train loop's 'loss' keys and checked val keys go in
        model = self._model(runner)
        self._saved = model.feature_cache
        if not self._val_on:
            model.feature_cache = None

    def after_val(self, runner) -> None:
        self._model(runner).feature_cache = getattr(self, '_saved', None)

    def after_train(self, runner) -> None:
        model = self._model(runner)
        n = len(model.feature_cache or {})
        model.feature_cache = None  # free the memory before testing
        runner.logger.info(f'FrozenFeatureCacheHook: {n} cached encoder outputs released')
