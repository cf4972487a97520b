"""FrozenEVA checkpoints: round trip, clear errors, and the original-EVA / timm converter.

The converter is checked on self-made checkpoints: a tiny timm ``Eva`` (timm layout),
the same weights renamed to the original BAAI layout, and by comparing the tokens of
the converted MMPretrain backbone with timm's own forward pass.
"""
import importlib.util
import os.path as osp

import pytest
import torch

import tedloc_mm  # noqa: F401  (before timm)
from tedloc_mm.models.backbones import FrozenEVA
from tedloc_mm.models.utils.eva_checkpoint import convert_eva_state_dict
from eva_reference import TINY, _timm_eva, randomize, tiny_eva  # noqa: F401

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


@pytest.mark.parametrize('variant', ['eva02', 'eva01'])
def test_round_trip(tmp_path, variant):
    src = tiny_eva(variant)
    randomize(src)
    path = str(tmp_path / 'eva.pth')
    # MMPretrain converters write a 'backbone.' prefix; both forms are accepted
    torch.save({'state_dict': {'backbone.' + k: v for k, v in src.vit.state_dict().items()}},
               path)
    dst = FrozenEVA(variant=variant, checkpoint=path, **TINY)
    dst.init_weights()  # where the Runner loads it, before training
    for k, v in src.vit.state_dict().items():
        assert torch.equal(v, dst.vit.state_dict()[k]), k
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(src(x), dst(x))
    assert dst(x).shape == (2, 64, 8, 8)
    dst.init_weights()  # a second init reloads the same weights
    torch.testing.assert_close(src(x), dst(x))


def test_mismatched_keys_report_counts(tmp_path):
    sd = tiny_eva().vit.state_dict()
    sd.pop('cls_token')
    sd.pop('layers.1.mlp.w3.bias')
    sd['layers.7.extra.weight'] = torch.zeros(1)
    path = str(tmp_path / 'bad.pth')
    torch.save(sd, path)
    with pytest.raises(KeyError, match=r'2 missing keys.*1 unexpected keys'):
        FrozenEVA(checkpoint=path, **TINY).init_weights()


def test_missing_file_says_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match='eva_to_mmpretrain.py'):
        FrozenEVA(checkpoint=str(tmp_path / 'nope.pth'), **TINY).init_weights()


def test_frozen_eval_mode_and_no_grad():
    m = tiny_eva(drop_path_rate=0.5)
    m.train()
    # the wrapper reports eval too (FrozenBackbone): nothing in it ever trains
    assert not m.training and not any(mod.training for mod in m.vit.modules())
    assert not any(p.requires_grad for p in m.parameters())
    x = torch.randn(1, 3, 64, 64, requires_grad=True, generator=torch.Generator().manual_seed(1))
    out = m(x)
    assert not out.requires_grad
    torch.testing.assert_close(out, m(x))  # deterministic: drop-path is off


def _load_converted(variant, state_dict, num_heads=4):
    m = tiny_eva(variant, num_heads=num_heads)
    sd = convert_eva_state_dict(state_dict, variant)
    own = m.vit.state_dict()
    derived = [k for k in own if k not in sd]
    assert all('rope.freqs' in k for k in derived), derived
    assert not [k for k in sd if k not in own]
    for k in derived:
        sd[k] = own[k]
    m.vit.load_state_dict(sd)
    return m


def test_converter_eva01_timm_matches_timm_forward():
    ref = _timm_eva('eva01')
    m = _load_converted('eva01', {'model': ref.state_dict()})
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        want = ref.forward_features(x)[:, 1:]
    got = m(x).flatten(2).transpose(1, 2)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


#: converted EVA-02 vs timm's forward with RoPE: measured max |diff| <= 1e-6 on tokens
#: of magnitude ~6 (float32 rounding; 0 on most runs); 10x margin
ROPE_ATOL = 1e-5


def _broken_rope_tables(rope):
    """(name, cos, sin) of wrong RoPE tables of the same shape as ``rope``'s."""
    from mmpretrain.models.utils import RotaryEmbeddingFast
    cos, sin = rope.freqs_cos, rope.freqs_sin
    half, quarter = cos.shape[1] // 2, cos.shape[1] // 4
    swap_hw = torch.cat([torch.arange(half, 2 * half), torch.arange(half)])
    # frequencies in reverse order, each kept on its channel pair
    rev = torch.arange(quarter).flip(0).repeat_interleave(2) * 2 + torch.arange(2).repeat(
        quarter)
    reverse_freqs = torch.cat([rev, half + rev])
    mm_cos, mm_sin = RotaryEmbeddingFast.compute_position_embedding(rope)
    return [('no rotation', torch.ones_like(cos), torch.zeros_like(sin)),
            ('h and w swapped', cos[:, swap_hw], sin[:, swap_hw]),
            ('frequencies reversed', cos[:, reverse_freqs], sin[:, reverse_freqs]),
            ("MMPretrain 1.2.0's table", mm_cos, mm_sin)]


@pytest.mark.parametrize('num_heads', [4, 2])  # RoPE half-width 8 (= the 8x8 grid), 16
def test_converter_eva02_timm_matches_timm_forward(num_heads):
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    # without RoPE the two implementations agree to float precision ...
    ref = _timm_eva('eva02', rope=False, num_heads=num_heads)
    m = _load_converted('eva02', ref.state_dict(), num_heads)
    m.vit.rope.forward = lambda t, patch_resolution: t
    with torch.no_grad():
        want = ref.forward_features(x)[:, 1:]
    torch.testing.assert_close(m(x).flatten(2).transpose(1, 2), want, atol=1e-5, rtol=1e-5)
    # ... and with RoPE too. The q/k weights are scaled x10 so that attention depends
    # on position: with the 0.1-scale random weights attention is nearly uniform, and
    # even no rotation at all changes the tokens by only ~1e-3.
    ref = _timm_eva('eva02', rope=True, num_heads=num_heads, qk_gain=10.0)
    m = _load_converted('eva02', ref.state_dict(), num_heads)
    with torch.no_grad():
        want = ref.forward_features(x)[:, 1:]

        def error():
            return float((m(x).flatten(2).transpose(1, 2) - want).abs().max())

        assert error() <= ROPE_ATOL
        rope = m.vit.rope
        good = rope.freqs_cos.clone(), rope.freqs_sin.clone()
        for name, cos, sin in _broken_rope_tables(rope):
            rope.freqs_cos.copy_(cos)
            rope.freqs_sin.copy_(sin)
            assert error() > 100 * ROPE_ATOL, name  # measured 6e-2 .. 1.3e-1
        rope.freqs_cos.copy_(good[0])
        rope.freqs_sin.copy_(good[1])
        assert error() <= ROPE_ATOL


def test_rope_table_is_ignored_in_a_checkpoint(tmp_path):
    """RoPE tables are derived: a checkpoint holding another table does not replace ours."""
    m = tiny_eva()
    sd = m.vit.state_dict()
    good = m.vit.rope.freqs_cos.clone()
    stale = {k: (torch.zeros_like(v) if k.endswith(('freqs_cos', 'freqs_sin')) else v)
             for k, v in sd.items()}
    m.vit.load_state_dict(stale, strict=True)
    assert torch.equal(m.vit.rope.freqs_cos, good)
    assert all(layer.attn.rope is m.vit.rope for layer in m.vit.layers)


def _to_original_eva02_layout(timm_sd):
    """Rename timm EVA-02 keys to the original BAAI EVA-02 layout."""
    out = {}
    for k, v in timm_sd.items():
        k2 = (k.replace('mlp.fc1_g.', 'mlp.w1.').replace('mlp.fc1_x.', 'mlp.w2.')
              .replace('mlp.norm.', 'mlp.ffn_ln.').replace('mlp.fc2.', 'mlp.w3.'))
        if k2.endswith('attn.q_proj.bias'):
            k2 = k2.replace('attn.q_proj.bias', 'attn.q_bias')
        if k2.endswith('attn.v_proj.bias'):
            k2 = k2.replace('attn.v_proj.bias', 'attn.v_bias')
        out[k2] = v
    out['norm.weight'] = torch.ones(64)  # final norm and MIM head: dropped
    out['lm_head.weight'] = torch.zeros(10, 64)
    return {'module': out}


def test_converter_original_eva02_layout_equals_timm_conversion():
    timm_sd = _timm_eva('eva02').state_dict()
    a = convert_eva_state_dict(timm_sd, 'eva02')
    b = convert_eva_state_dict(_to_original_eva02_layout(timm_sd), 'eva02')
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    # the stacked qkv bias has a zero k part (EVA has no k bias)
    qkv_b = a['layers.0.attn.qkv.bias']
    assert torch.equal(qkv_b[64:128], torch.zeros(64))
    assert torch.equal(qkv_b[:64], timm_sd['blocks.0.attn.q_proj.bias'])


def test_converter_tool_writes_loadable_file(tmp_path):
    spec = importlib.util.spec_from_file_location(
        'eva_to_mmpretrain', osp.join(ROOT, 'tools/model_converters/eva_to_mmpretrain.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    ref = _timm_eva('eva01')
    src, dst = str(tmp_path / 'timm.pth'), str(tmp_path / 'out' / 'mm.pth')
    torch.save(ref.state_dict(), src)
    tool.main([src, dst, '--variant', 'eva01', '--img-size', '64', '--patch-size', '8'])
    m = FrozenEVA(variant='eva01', checkpoint=dst, **TINY)
    m.init_weights()
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        want = ref.forward_features(x)[:, 1:]
    torch.testing.assert_close(m(x).flatten(2).transpose(1, 2), want, atol=1e-5, rtol=1e-5)


# ------------------------------------------------------------------ EVA-01-L releases
def _timm_loads_at(state_dict, img_size):
    """timm's own path for a released file loaded at another size: its
    checkpoint_filter_fn (pos_embed resample) then load_state_dict."""
    import timm
    from timm.models.vision_transformer import checkpoint_filter_fn
    model = timm.create_model('eva_large_patch14_196', pretrained=False, img_size=img_size,
                              patch_size=8, embed_dim=64, depth=2, num_heads=4,
                              mlp_ratio=2, num_classes=10).eval()
    model.load_state_dict(checkpoint_filter_fn(dict(state_dict), model))
    return model


def _tokens(model, x):
    with torch.no_grad():
        return model(x).flatten(2).transpose(1, 2)


# a release grid smaller than the training grid (7 -> 8, as 196 px -> 224: 14 -> 16) and
# a larger one (10 -> 8, as 336 px -> 224: 24 -> 16)
@pytest.mark.parametrize('release_size', [56, 80])
def test_converted_eva01_classifier_release_gives_timms_tokens_resize_included(
        tmp_path, release_size):
    """An EVA-01-L classification release (timm VisionTransformer layout, released grid
    smaller or larger than the training grid, 8 x 8 here) converted by the tool gives
    the tokens timm computes after loading the same file at the training size."""
    from eva_reference import timm_eva01_classifier
    from mmpretrain.models.utils import resize_pos_embed as mmpretrain_resize

    release = timm_eva01_classifier(img_size=release_size)
    src, dst = str(tmp_path / 'release.pth'), str(tmp_path / 'mm.pth')
    torch.save({'model': release.state_dict()}, src)  # BAAI's files wrap it in 'model'
    ref = _timm_loads_at(release.state_dict(), img_size=64)
    _converter_tool().main([src, dst, '--variant', 'eva01', '--img-size', '64',
                            '--patch-size', '8'])
    assert torch.load(dst)['state_dict']['pos_embed'].shape == (1, 65, 64)
    ours = FrozenEVA(variant='eva01', checkpoint=dst, **TINY)
    ours.init_weights()
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        want = ref.forward_features(x)[:, 1:]
    got = _tokens(ours, x)
    assert float((got - want).abs().max()) <= 1e-5
    # the tolerance tells resizes apart: MMPretrain's (bicubic without antialiasing)
    # pos_embed instead of timm's moves the tokens far more
    with torch.no_grad():
        grid = int(round((release.pos_embed.shape[1] - 1) ** 0.5))
        ours.vit.pos_embed.copy_(mmpretrain_resize(release.pos_embed, (grid, grid), (8, 8),
                                                   'bicubic', num_extra_tokens=1))
    assert float((_tokens(ours, x) - want).abs().max()) > 100 * 1e-5


def test_load_eva_weights_resizes_an_unconverted_grid_like_timm(tmp_path):
    """A bare file still at the release grid: the loader resizes it as timm does."""
    from eva_reference import timm_eva01_classifier
    release = timm_eva01_classifier(img_size=56)  # 7 x 7
    path = str(tmp_path / 'grid7.pth')
    torch.save(convert_eva_state_dict(release.state_dict(), 'eva01'), path)
    assert torch.load(path)['pos_embed'].shape == (1, 50, 64)
    ours = FrozenEVA(variant='eva01', checkpoint=path, **TINY)
    ours.init_weights()
    ref = _timm_loads_at(release.state_dict(), img_size=64)
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        want = ref.forward_features(x)[:, 1:]
    assert float((_tokens(ours, x) - want).abs().max()) <= 1e-5


def test_mmpretrain_classifier_layout_converts_to_the_same_backbone():
    """MMPretrain's converted EVA-L classifier (backbone.*, backbone.ln2 = fc_norm,
    head.fc.*) gives the same bare backbone as the timm file."""
    from eva_reference import timm_eva01_classifier
    timm_sd = timm_eva01_classifier(img_size=64).state_dict()
    bare = convert_eva_state_dict(timm_sd, 'eva01')
    mm = {'backbone.' + k: v for k, v in bare.items()}
    mm.update({'backbone.ln2.weight': timm_sd['fc_norm.weight'],
               'backbone.ln2.bias': timm_sd['fc_norm.bias'],
               'head.fc.weight': timm_sd['head.weight'], 'head.fc.bias': timm_sd['head.bias']})
    again = convert_eva_state_dict({'state_dict': mm}, 'eva01')
    assert again.keys() == bare.keys()
    assert all(torch.equal(again[k], bare[k]) for k in bare)
    assert not any(k.startswith(('ln2.', 'head', 'fc_norm')) for k in again)


def _converter_tool():
    spec = importlib.util.spec_from_file_location(
        'eva_to_mmpretrain', osp.join(ROOT, 'tools/model_converters/eva_to_mmpretrain.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool
