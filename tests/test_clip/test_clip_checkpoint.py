"""CLIP weights from local files: an OpenAI-format TorchScript archive the test writes
itself, open_clip state dicts, and the errors of wrong or missing files."""
import warnings

import pytest
import torch

import tedloc_mm  # noqa: F401  (compat before open_clip)
from clip_reference import TINY_OPENAI_NAME, register_tiny_openai, write_openai_archive
from tedloc_mm.clip import is_torchscript_archive, load_clip


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    import open_clip
    d = tmp_path_factory.mktemp('openai_clip')
    register_tiny_openai(d)
    torch.manual_seed(3)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        src = open_clip.create_model(TINY_OPENAI_NAME, pretrained=None).eval()
    ref = write_openai_archive(src, d / 'ViT-tiny.pt')
    torch.save(ref.state_dict(), d / 'open_clip_tiny.bin')
    return d, ref


def _same_outputs(a, b):
    import open_clip
    tok = open_clip.get_tokenizer(TINY_OPENAI_NAME)
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    text = tok(['a photo of a cat.', 'a clean origami dog.'])
    with torch.no_grad():
        torch.testing.assert_close(a.encode_image(x), b.encode_image(x), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(a.encode_text(text), b.encode_text(text), atol=1e-5,
                                   rtol=1e-5)


def test_openai_torchscript_archive_loads_as_the_model_it_holds(files):
    d, ref = files
    path = str(d / 'ViT-tiny.pt')
    assert is_torchscript_archive(path)
    assert not is_torchscript_archive(str(d / 'open_clip_tiny.bin'))
    model, tokenizer = load_clip(TINY_OPENAI_NAME, path)
    assert type(model.visual.transformer.resblocks[0].mlp.gelu).__name__ == 'QuickGELU'
    assert next(model.parameters()).dtype == torch.float32
    _same_outputs(model, ref)
    # without a name: architecture from the file alone
    _same_outputs(load_clip(None, path)[0], ref)
    # the same weights as an open_clip state dict
    _same_outputs(load_clip(TINY_OPENAI_NAME, str(d / 'open_clip_tiny.bin'))[0], ref)


def test_wrong_or_missing_files_are_errors_naming_them(files, tmp_path):
    d, _ = files
    path = str(d / 'ViT-tiny.pt')
    with pytest.raises(ValueError, match=r'ViT-tiny\.pt is not a ViT-B-16: embed_dim 32'):
        load_clip('ViT-B-16', path)
    with pytest.raises(FileNotFoundError, match='missing.pt'):
        load_clip('ViT-B-16', str(tmp_path / 'missing.pt'))
    junk = tmp_path / 'junk.pt'
    junk.write_text('not a checkpoint')
    with pytest.raises(ValueError, match=rf'junk\.pt.*{TINY_OPENAI_NAME}'):
        load_clip(TINY_OPENAI_NAME, str(junk))
    # open_clip weights of another architecture (embedding width 16, not 32)
    with pytest.raises(ValueError,
                       match=rf'(?s)open_clip_tiny\.bin.*{TINY_OPENAI_NAME}.*size mismatch'):
        load_clip(TINY_OPENAI_NAME, str(d / 'open_clip_tiny.bin'), embed_dim=16)
    with pytest.raises(ValueError, match='random_init'):
        load_clip('ViT-B-16', None)
