"""``tedloc.registry`` is :mod:`tedloc_mm.registry` (see ``tedloc/__init__.py``)."""
from tedloc_mm.registry import *  # noqa: F401,F403
