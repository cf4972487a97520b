"""Text anchors: class-name parsing, prompt ensembling, anchor files, the build tool.

A tiny open_clip architecture is registered from a JSON file in tmp_path (open_clip's
``add_model_config``), so no download and no large model is needed.
"""
import importlib.util
import json
import os.path as osp

import pytest
import torch
import torch.nn.functional as F

import tedloc_mm  # noqa: F401  (before open_clip)
from tedloc_mm.models.heads import PatchMILHead
from tedloc_mm.clip import builtin_class_names, resolve_templates
from tedloc_mm.fileio import clean_class_name, load_anchor_file, read_class_names, save_anchor_file

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TINY = 'tedloc-tiny-text-test'


@pytest.fixture(scope='module')
def tiny_clip(tmp_path_factory):
    import open_clip
    d = tmp_path_factory.mktemp('oc_cfg')
    json.dump(dict(embed_dim=24,
                   vision_cfg=dict(image_size=32, layers=1, width=32, patch_size=16,
                                   head_width=16),
                   text_cfg=dict(context_length=77, vocab_size=49408, width=32, heads=2,
                                 layers=1)), open(d / f'{TINY}.json', 'w'))
    open_clip.add_model_config(str(d))
    torch.manual_seed(0)
    model = open_clip.create_model(TINY).eval()
    ckpt = str(d / 'tiny_clip.pth')
    torch.save(model.state_dict(), ckpt)
    return model, open_clip.get_tokenizer(TINY), ckpt


def build_tool():
    spec = importlib.util.spec_from_file_location(
        'build_text_anchors', osp.join(ROOT, 'tools/build_text_anchors.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool


def test_clean_and_builtin_names():
    assert clean_class_name('001.Black_footed_Albatross') == 'Black footed Albatross'
    assert clean_class_name('great white shark, white shark') == 'great white shark'
    cub = builtin_class_names('cub')
    assert len(cub) == 200 and cub[0] == 'Black footed Albatross'
    assert len(builtin_class_names('imagenet')) == 1000


def test_read_class_names_formats_and_errors(tmp_path):
    f = tmp_path / 'classes.txt'
    f.write_text('1 001.Black_footed_Albatross\n2 002.Laysan_Albatross\n\n')
    assert read_class_names(str(f), clean=True) == ['Black footed Albatross', 'Laysan Albatross']
    f.write_text('cat\ndog\n')
    assert read_class_names(str(f), clean=True) == ['cat', 'dog']
    f.write_text('cat\n\ndog\n')
    with pytest.raises(ValueError, match=':2: empty'):
        read_class_names(str(f), clean=True)
    f.write_text('cat\nCat_x\ncat\n')
    with pytest.raises(ValueError, match=":3: class name 'cat' is already on line 1"):
        read_class_names(str(f), clean=True)
    f.write_text('0 cat\n5 dog\n')
    with pytest.raises(ValueError, match=':2: index 5'):
        read_class_names(str(f), clean=True)


def test_templates():
    assert resolve_templates('single') == ['a photo of a {}.']
    assert resolve_templates(['x {} y']) == ['x {} y']
    with pytest.raises(ValueError, match='exactly once'):
        resolve_templates(['no placeholder'])


def test_build_tool_matches_manual_prompt_ensemble(tmp_path, tiny_clip):
    model, tokenizer, ckpt = tiny_clip
    classes = tmp_path / 'names.txt'
    classes.write_text('red fox\nsnowy owl\nbarn swallow\n')
    out = str(tmp_path / 'anchors.pth')
    build_tool().main(['--class-file', str(classes), '--model', TINY, '--checkpoint', ckpt,
                       '--templates', 'a photo of a {}.', 'a drawing of a {}.',
                       '--out', out])
    a = load_anchor_file(out, num_classes=3)
    assert a['class_names'] == ['red fox', 'snowy owl', 'barn swallow']
    assert a['model_name'] == TINY and a['pretrained'] == ckpt
    assert a['templates'] == ['a photo of a {}.', 'a drawing of a {}.']
    emb = a['embeddings']
    assert emb.shape == (3, 24) and emb.dtype == torch.float32
    # independent computation: per class, mean of normalised template embeddings
    with torch.no_grad():
        for k, name in enumerate(a['class_names']):
            e1 = F.normalize(model.encode_text(tokenizer([f'a photo of a {name}.'])), dim=-1)
            e2 = F.normalize(model.encode_text(tokenizer([f'a drawing of a {name}.'])), dim=-1)
            torch.testing.assert_close(emb[k], F.normalize(e1 + e2, dim=-1)[0], atol=1e-5,
                                       rtol=1e-5)
    # the head builds from it (QR over K=3 <= d=24)
    head = PatchMILHead(num_classes=3, in_channels=24, anchor_file=out)
    torch.testing.assert_close(head.anchors[0], emb[0] / emb[0].norm(), atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match='K=3.*num_classes=4'):
        PatchMILHead(num_classes=4, in_channels=24, anchor_file=out)


def test_build_tool_needs_checkpoint_or_explicit_random_init(tmp_path, tiny_clip):
    tool = build_tool()
    out = str(tmp_path / 'a.pth')
    with pytest.raises(ValueError, match='--random-init'):
        tool.main(['--classes', 'cub', '--model', TINY, '--out', out])
    with pytest.raises(FileNotFoundError, match='nothing is downloaded'):
        tool.main(['--classes', 'cub', '--model', TINY, '--checkpoint',
                   str(tmp_path / 'missing.bin'), '--out', out])
    with pytest.warns(UserWarning, match='RANDOM-INITIALISED TEXT TOWER'):
        tool.main(['--classes', 'cub', '--model', TINY, '--random-init', '--templates',
                   'cub', '--out', out])
    a = load_anchor_file(out)
    assert a['pretrained'] == 'random-init' and a['embeddings'].shape == (200, 24)
    torch.testing.assert_close(a['embeddings'].norm(dim=1), torch.ones(200))


def test_anchor_file_validation(tmp_path):
    p = str(tmp_path / 'x.pth')
    with pytest.raises(ValueError, match='2 class names for 3'):
        save_anchor_file(p, torch.randn(3, 4, generator=torch.Generator().manual_seed(0)),
                         ['a', 'b'], 'm', 'f', ['{}'])
    torch.save({'foo': 1}, p)
    with pytest.raises(ValueError, match='not an anchor file'):
        load_anchor_file(p)
    with pytest.raises(FileNotFoundError, match='build_text_anchors.py'):
        load_anchor_file(str(tmp_path / 'missing.pth'))


def test_random_init_anchors_repeat_with_the_seed(tmp_path, tiny_clip):
    """The demo's anchors come from a random tower: the same seed must give the same file."""
    tool = build_tool()
    outs = {}
    for name, seed in (('a', 0), ('b', 0), ('c', 1)):
        outs[name] = str(tmp_path / f'{name}.pth')
        torch.manual_seed(100 + len(outs))  # the global RNG state must not matter
        with pytest.warns(UserWarning):
            tool.main(['--classes', 'cub', '--model', TINY, '--random-init', '--seed',
                       str(seed), '--templates', 'single', '--out', outs[name]])
    a, b, c = (load_anchor_file(outs[n])['embeddings'] for n in 'abc')
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


def test_build_tool_reads_an_openai_torchscript_archive(tmp_path):
    """OpenAI's ViT-B-16.pt format: a TorchScript archive the test writes itself."""
    import open_clip

    from clip_reference import TINY_OPENAI_NAME, register_tiny_openai, write_openai_archive
    register_tiny_openai(tmp_path)
    torch.manual_seed(1)
    src = open_clip.create_model(TINY_OPENAI_NAME, pretrained=None).eval()
    archive = str(tmp_path / 'ViT-tiny.pt')
    ref = write_openai_archive(src, archive)
    out = str(tmp_path / 'anchors.pth')
    build_tool().main(['--classes', 'imagenet_openai', '--model', TINY_OPENAI_NAME,
                       '--checkpoint', archive, '--templates', 'clip_es', '--out', out])
    a = load_anchor_file(out, num_classes=1000)
    assert a['class_names'][:3] == ['tench', 'goldfish', 'great white shark']
    assert a['templates'] == ['a clean origami {}.'] and a['pretrained'] == archive
    tok = open_clip.get_tokenizer(TINY_OPENAI_NAME)
    with torch.no_grad():
        for k in (0, 517, 999):
            want = F.normalize(ref.encode_text(tok([f'a clean origami {a["class_names"][k]}.'])),
                               dim=-1)[0]
            torch.testing.assert_close(a['embeddings'][k], want, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match='is not a ViT-L-14'):
        build_tool().main(['--classes', 'cub', '--model', 'ViT-L-14', '--checkpoint', archive,
                           '--out', out])


def test_class_lists_and_templates_of_clip_es():
    from tedloc_mm.fileio import class_names_from_folders
    names = builtin_class_names('imagenet_openai')
    assert len(names) == 1000 and names[134] == 'crane bird' and names[517] == 'construction crane'
    assert builtin_class_names('imagenet')[134] == 'crane bird'
    assert resolve_templates('clip_es') == ['a clean origami {}.']
    openai = resolve_templates('openai_imagenet')
    assert len(openai) == 80 and openai[0] == 'a bad photo of a {}.'
    ids = ['002.Laysan_Albatross/b.jpg', '001.Black_footed_Albatross/a.jpg',
           '001.Black_footed_Albatross/c.jpg']
    assert class_names_from_folders(ids, [1, 0, 0]) == ['Black footed Albatross',
                                                         'Laysan Albatross']
    with pytest.raises(ValueError, match='two folders'):
        class_names_from_folders(ids, [1, 0, 1])
    with pytest.raises(ValueError, match=r'class\(es\) \[1\]'):
        class_names_from_folders(ids[1:], [0, 2])


#: (list, index, upstream name, the index of the other class of that name (ignoring case))
UPSTREAM_DUPLICATES = (('imagenet', 134, 'crane', 517), ('imagenet', 264, 'Cardigan', 474),
                       ('imagenet', 638, 'maillot', 639),
                       ('imagenet_openai', 657, 'missile', 744),
                       ('imagenet_openai', 836, 'sunglasses', 837))


def test_builtin_lists_have_unique_names_where_upstream_lists_do_not():
    from mmpretrain.datasets.categories import IMAGENET_CATEGORIES
    from open_clip.zero_shot_metadata import IMAGENET_CLASSNAMES
    upstream = dict(imagenet=[clean_class_name(n) for n in IMAGENET_CATEGORIES],
                    imagenet_openai=list(IMAGENET_CLASSNAMES))
    for key, i, name, j in UPSTREAM_DUPLICATES:  # the upstream lists repeat these
        assert upstream[key][i].casefold() == upstream[key][j].casefold() == name.casefold()
    for key in ('cub', 'imagenet', 'ilsvrc', 'imagenet_openai', 'ilsvrc_openai'):
        names = builtin_class_names(key)
        assert len({n.casefold() for n in names}) == len(names), key
        ref = upstream.get(key.replace('ilsvrc', 'imagenet'))
        if ref is not None:  # only the named classes were renamed
            assert sum(a != b for a, b in zip(names, ref)) == (4 if 'openai' not in key else 2)
    imagenet, openai = builtin_class_names('imagenet'), builtin_class_names('imagenet_openai')
    assert (imagenet[134], imagenet[517], imagenet[264], imagenet[474], imagenet[638],
            imagenet[639]) == ('crane bird', 'construction crane', 'Cardigan Welsh corgi',
                               'cardigan', 'maillot', 'tank suit')
    assert (openai[657], openai[744], openai[836], openai[837]) == (
        'missile', 'projectile', 'sunglass', 'sunglasses')


@pytest.fixture(scope='module')
def tiny_wide_text_tower(tmp_path_factory):
    """A small random open_clip text tower 1024 wide, one layer (d >= K = 1000; the
    transformer itself must be that wide too: a narrower one projected to 1024 spans
    only its own width, and QR would find the 1000 anchors linearly dependent)."""
    import open_clip
    d = tmp_path_factory.mktemp('oc_wide')
    name = 'tedloc-tiny-text-1024'
    json.dump(dict(embed_dim=1024,
                   vision_cfg=dict(image_size=32, layers=1, width=32, patch_size=16,
                                   head_width=16),
                   text_cfg=dict(context_length=77, vocab_size=49408, width=1024, heads=4,
                                 layers=1)), open(d / f'{name}.json', 'w'))
    open_clip.add_model_config(str(d))
    return name


def test_anchors_for_all_1000_ilsvrc_names_and_qr_accepts_them(tmp_path,
                                                              tiny_wide_text_tower):
    """The ILSVRC config's anchor command with the built-in list, on a small random
    tower: 1000 distinct anchors, and QR gives 1000 orthonormal rows."""
    out = str(tmp_path / 'ilsvrc.pth')
    with pytest.warns(UserWarning, match='RANDOM-INITIALISED'):
        build_tool().main(['--classes', 'ilsvrc', '--model', tiny_wide_text_tower,
                           '--random-init', '--templates', 'single', '--out', out])
    a = load_anchor_file(out, num_classes=1000)
    assert a['embeddings'].shape == (1000, 1024)
    assert a['class_names'][134] == 'crane bird'
    head = PatchMILHead(num_classes=1000, in_channels=1024, anchor_file=out,
                        orthogonalization='qr')
    t = head.anchors.double()
    torch.testing.assert_close(t @ t.T, torch.eye(1000, dtype=torch.float64), atol=1e-5,
                               rtol=0)
    # the upstream names (crane twice, ...) give identical rows, which QR refuses
    emb = a['embeddings'].clone()
    emb[517] = emb[134]
    with pytest.raises(ValueError, match='duplicated'):
        from tedloc_mm.models.utils.orthogonalize import orthogonalize_anchors
        orthogonalize_anchors(emb, 'qr')


def test_build_tool_refuses_duplicate_names_naming_both_lines(tmp_path, tiny_clip,
                                                              monkeypatch):
    from tedloc_mm.fileio import ClassNamesError
    tool = build_tool()
    out = str(tmp_path / 'a.pth')
    f = tmp_path / 'names.txt'
    f.write_text('owl\nCrane\nfox\ncrane\n')
    with pytest.raises(ClassNamesError, match=r"names.txt:4: class name 'crane' is already "
                       r"on line 2"):
        tool.main(['--class-file', str(f), '--model', TINY, '--random-init', '--out', out])
    # a built-in list as upstream ships it (no renames): refused with both lines named
    from mmpretrain.datasets.categories import IMAGENET_CATEGORIES
    import tedloc_mm.clip.prompts   # the tool imports it from there in main()
    monkeypatch.setattr(tedloc_mm.clip.prompts, 'builtin_class_names',
                        lambda key: [clean_class_name(n) for n in IMAGENET_CATEGORIES])
    # (the first repeat in label order: the sweater 474 after the corgi 264, ignoring case)
    with pytest.raises(ClassNamesError, match=r"'imagenet'.*:475: class name 'cardigan' is "
                       r"already on line 265 \('Cardigan'\)"):
        tool.main(['--classes', 'imagenet', '--model', TINY, '--random-init', '--out', out])
    # names that differ only in what the tokenizer's cleaning drops (HTML entities)
    f.write_text('owl\nsalt &amp; pepper\nsalt & pepper\n')
    with pytest.raises(ClassNamesError, match=r"names.txt:3: the prompt of class name "
                       r"'salt & pepper' tokenizes like that of line 2"):
        tool.main(['--class-file', str(f), '--model', TINY, '--random-init', '--out', out])
    assert not osp.exists(out)
