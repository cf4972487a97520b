"""Alias package for the registry scope ``'tedloc'``.

MMEngine resolves a registry scope ``X`` by importing ``X.registry`` (see
``Registry.switch_scope_and_registry``); without this alias every build under
``default_scope='tedloc'`` logs "Failed to import `tedloc.registry`". The
implementation lives in :mod:`tedloc_mm`.
"""
import tedloc_mm  # noqa: F401  (import hooks of tedloc_mm.compat)
