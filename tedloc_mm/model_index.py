"""Model names of ``model-index.yml`` accepted wherever a config path is.

The package ships ``tedloc_mm/model-index.yml`` (MMPretrain's format: ``Import`` lists
metafiles, each ``Models`` entry has a ``Name`` and a ``Config`` path relative to the
package folder). MMPretrain's ``ModelHub`` registers such an index for ``get_model``;
here :func:`resolve_config` maps a name to its config file for the tools
(``tools/test.py linear-probe_efficientnet-lite0_stamps ...``). Reads YAML only: no
torch, no OpenMMLab import.
"""
import functools
import os.path as osp
from typing import Dict

from .tool_errors import UserError

PACKAGE_DIR = osp.dirname(osp.abspath(__file__))
#: the model index shipped with the package
MODEL_INDEX = osp.join(PACKAGE_DIR, 'model-index.yml')


@functools.lru_cache(maxsize=None)
def model_configs() -> Dict[str, str]:
    """{model name: absolute config path} of every model in :data:`MODEL_INDEX`."""
    import yaml
    with open(MODEL_INDEX, encoding='utf-8') as f:
        index = yaml.safe_load(f)
    out = {}
    for rel in index.get('Import', []):
        with open(osp.join(PACKAGE_DIR, rel), encoding='utf-8') as f:
            meta = yaml.safe_load(f) or {}
        for model in meta.get('Models') or []:
            out[model['Name']] = osp.join(PACKAGE_DIR, model['Config'])
    return out


class ConfigNotFoundError(UserError, FileNotFoundError):
    """Neither a config file nor a model name (a user mistake and a missing file)."""


def resolve_config(config: str) -> str:
    """``config`` if it is a file, else the config of the model of that name.

    Raises:
        ConfigNotFoundError: neither a file nor a model name (the message names the
            value and says where the names are listed).
    """
    if osp.isfile(config):
        return config
    names = model_configs()
    if config in names:
        return names[config]
    close = [n for n in names if config.lower() in n.lower()][:3]
    hint = f' (did you mean {", ".join(close)}?)' if close else ''
    raise ConfigNotFoundError(f'config not found: {config} is neither a config file nor a model '
                    f'name of {MODEL_INDEX}{hint}')
