"""An optimizer constructor that hands the optimizer only the trainable parameters."""
from mmengine.logging import print_log
from mmengine.optim import DefaultOptimWrapperConstructor
from mmengine.registry import OPTIM_WRAPPERS, OPTIMIZERS

from tedloc_mm.registry import OPTIM_WRAPPER_CONSTRUCTORS


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class TrainableParamsOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """MMEngine's default constructor, minus parameters with ``requires_grad=False``.

    Why: without ``paramwise_cfg`` MMEngine passes ``model.parameters()`` (for TeD-Loc
    the 303 M frozen EVA-L weights too) to the optimizer; with it, it skips them but
    logs one warning per frozen tensor (~390 lines). Here the frozen ones are left
    out silently and one summary line is logged.
    """

    def __call__(self, model):
        module = model.module if hasattr(model, 'module') else model
        frozen = [p for p in module.parameters() if not p.requires_grad]
        trainable = [p for p in module.parameters() if p.requires_grad]
        print_log(f'optimizer: {len(trainable)} trainable tensors '
                  f'({sum(p.numel() for p in trainable) / 1e6:.2f} M values); '
                  f'{len(frozen)} frozen tensors ({sum(p.numel() for p in frozen) / 1e6:.1f} '
                  f'M values) left out', logger='current')
        if self.paramwise_cfg:
            return super().__call__(model)  # MMEngine skips frozen ones itself
        optimizer_cfg = self.optimizer_cfg.copy()
        optimizer_cfg['params'] = trainable
        optimizer = OPTIMIZERS.build(optimizer_cfg)
        wrapper_cfg = self.optim_wrapper_cfg.copy()
        wrapper_cfg.setdefault('type', 'OptimWrapper')
        return OPTIM_WRAPPERS.build(wrapper_cfg, default_args=dict(optimizer=optimizer))
