"""The paper config with the authors' sampling: only the sampler differs, with the
values of the TrCAM README run."""
import os.path as osp

from mmengine.config import Config

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def test_only_the_sampler_differs_and_it_has_the_authors_values():
    paper = Config.fromfile(osp.join(ROOT, 'configs/tedloc_eva-l_cub.py'))
    authors = Config.fromfile(osp.join(ROOT, 'configs/ablations/'
                                             'tedloc_eva-l_authors-sampling_cub.py'))
    ours = paper.train_dataloader.dataset.pipeline
    theirs = authors.train_dataloader.dataset.pipeline
    assert [t['type'] for t in ours] == [t['type'] for t in theirs]
    for a, b in zip(ours, theirs):
        if a['type'] != 'PseudoLabelSampler':
            assert a == b
    sampler = next(t for t in theirs if t['type'] == 'PseudoLabelSampler')
    assert dict(sampler) == dict(type='PseudoLabelSampler', grid_stride=1,
                                 num_fg_candidates=0.6, num_bg_candidates=0.1,
                                 bg_source='image', num_samples=1, fg_draw='cam_weighted',
                                 grow_kernel=3)
    assert authors.model == paper.model
    assert authors.train_dataloader.batch_size == paper.train_dataloader.batch_size
    # the decoder keeps the paper's grid
    assert authors.model.neck.out_stride == 4
    import tedloc_mm  # noqa: F401
    from tedloc_mm.registry import TRANSFORMS
    assert TRANSFORMS.build(sampler).grow_kernel == 3
