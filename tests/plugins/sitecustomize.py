"""Test-only start-up hook of the subprocesses that tests launch with ``tests/plugins`` on
``PYTHONPATH`` (Python imports ``sitecustomize`` at start-up; never on a user's path).

Inert unless ``TEDLOC_TEST_KILL_CAMS`` is set, and then only in a ``tools/generate_cams.py``
process: :mod:`cam_kill` arms a SIGKILL part-way through the CAM store (driver resume
tests, tests/test_workflow/test_reproduce_tiny.py).
"""
import os
import sys

if (os.environ.get('TEDLOC_TEST_KILL_CAMS') and sys.argv
        and os.path.basename(sys.argv[0]) == 'generate_cams.py'):
    import cam_kill
    cam_kill.arm(os.environ['TEDLOC_TEST_KILL_CAMS'])
