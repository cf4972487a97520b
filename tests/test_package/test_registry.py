"""Registry scope 'tedloc' in both directions."""
import logging
import sys
import textwrap

import pytest
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.registry import DefaultScope, init_default_scope

from tedloc_mm.registry import MODELS, METRICS, TRANSFORMS


@MODELS.register_module(force=True)
class _RegistryProbeModule:
    """Registered in the tedloc scope only, to test cross-scope builds."""

    def __init__(self, value=1):
        self.value = value


def _fresh_scope(name):
    return DefaultScope.get_instance(f'test-{name}-{id(object())}', scope_name=name)


def test_tedloc_scope_builds_own_and_parent_components():
    with DefaultScope.overwrite_default_scope('tedloc'):
        assert MODELS.build(dict(type='_RegistryProbeModule', value=3)).value == 3
        # MMPretrain's by bare name, through the parent chain
        clf = MODELS.build(dict(type='ImageClassifier',
                                backbone=dict(type='ResNet', depth=18)))
        assert type(clf).__name__ == 'ImageClassifier'
        # MMCV's transforms and MMPretrain's metrics too
        assert type(TRANSFORMS.build(dict(type='LoadImageFromFile'))).__name__ == \
            'LoadImageFromFile'
        assert type(METRICS.build(dict(type='Accuracy'))).__name__ == 'Accuracy'


@pytest.mark.parametrize('foreign_scope', ['mmpretrain', 'mmseg'])
def test_foreign_scope_builds_ours_with_prefix(tmp_path, foreign_scope):
    """A config of another project names our components as `tedloc.X`."""
    import mmseg.registry  # noqa: F401  (creates the mmseg scope)
    from mmpretrain.registry import MODELS as MMPRETRAIN_MODELS
    from mmseg.registry import MODELS as MMSEG_MODELS
    cfg_file = tmp_path / 'foreign.py'
    cfg_file.write_text(textwrap.dedent(f"""
        default_scope = '{foreign_scope}'
        custom_imports = dict(imports=['tedloc_mm'], allow_failed_imports=False)
        probe = dict(type='tedloc._RegistryProbeModule', value=7)
    """))
    cfg = Config.fromfile(str(cfg_file))
    registry = MMPRETRAIN_MODELS if foreign_scope == 'mmpretrain' else MMSEG_MODELS
    with DefaultScope.overwrite_default_scope(foreign_scope):
        assert registry.build(cfg.probe).value == 7
        # without the prefix the foreign scope does not see it
        with pytest.raises(KeyError):
            registry.build(dict(type='_RegistryProbeModule'))


class _MMLoggerRecords(logging.Handler):
    """Collects what MMEngine's ``print_log(..., logger='current')`` emits.

    MMLogger does not propagate to the root logger, so pytest's ``caplog`` never sees
    its records: the handler goes on the current MMLogger instance itself.
    """

    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


@pytest.fixture
def mmlogger_records():
    logger = MMLogger.get_current_instance()
    handler = _MMLoggerRecords()
    logger.addHandler(handler)
    yield handler.messages
    logger.removeHandler(handler)


def _build_under(scope):
    with DefaultScope.overwrite_default_scope(scope):
        return MODELS.build(dict(type='_RegistryProbeModule'))


def test_init_default_scope_tedloc_needs_no_warning(mmlogger_records, monkeypatch):
    # the capture works: a scope without a `<scope>.registry` module logs the message
    # (the registry falls back to the one it was called on, so the build succeeds)
    _build_under('tedloc_no_such_scope')
    # (MMEngine 0.10.7 names the scope argument, None here, not the scope it tried)
    assert any('Failed to import `' in m and '.registry`' in m
               for m in mmlogger_records), mmlogger_records
    mmlogger_records.clear()
    # `tedloc.registry` is imported afresh from disk (the `tedloc/` alias package),
    # not found in sys.modules because an earlier test imported it
    for name in ('tedloc', 'tedloc.registry'):
        monkeypatch.delitem(sys.modules, name, raising=False)
    init_default_scope('tedloc')
    assert _build_under('tedloc').value == 1
    assert not [m for m in mmlogger_records if 'Failed to import' in m], mmlogger_records
    assert 'tedloc.registry' in sys.modules


def test_foreign_config_inherits_ours_by_file_path(tmp_path, repo_root):
    """Another project inherits our configs by path and overrides a value."""
    base = f'{repo_root}/configs/_base_/default_runtime.py'
    cfg_file = tmp_path / 'child.py'
    cfg_file.write_text(f"_base_ = ['{base}']\n"
                        "default_hooks = dict(logger=dict(interval=7))\n")
    cfg = Config.fromfile(str(cfg_file))
    assert cfg.default_scope == 'tedloc'
    assert cfg.default_hooks.logger.interval == 7
    # and the MMPretrain base below ours (mmpretrain::) came along
    assert cfg.default_hooks.timer.type == 'IterTimerHook'
