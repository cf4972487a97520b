"""A tool script under tools/ imported as a module (its functions called in-process)."""
import importlib.util
import os.path as osp

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def load_tool(rel: str):
    """The module of ``ROOT/rel`` (e.g. ``'tools/test.py'``), named after its file."""
    spec = importlib.util.spec_from_file_location(osp.basename(rel)[:-3], osp.join(ROOT, rel))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
