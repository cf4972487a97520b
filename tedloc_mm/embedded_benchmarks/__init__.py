"""Generators of the small WSOL benchmarks the demo and the tests run on (offline data
sets, not runtime code): the semi-real stamp benchmark (photographic cut-outs on
photographs from Debian packages) and the synthetic glider benchmark. Both write the
wsolevaluation metadata layout with :mod:`tedloc_mm.fileio.wsol_writer`."""
