"""A test-only kill of tools/generate_cams.py part-way through its CAM store (resume
tests of the drivers), armed by ``sitecustomize`` from ``TEDLOC_TEST_KILL_CAMS``."""
import os
import signal


def arm(spec: str):
    """``spec`` = ``'K:ONCE_FILE'``: this process SIGKILLs itself when the CAM store writer
    is about to write its K-th id line (K-1 CAMs committed, the K-th CAM's row written
    and flushed without its id line: the worst moment of the store's write protocol),
    unless ``ONCE_FILE`` exists; it is created just before the kill, so that re-running
    the very same command completes the store, as a user re-runs a killed driver."""
    k, once_file = spec.split(':', 1)
    k = int(k)
    if os.path.exists(once_file):
        return
    import tedloc_mm.fileio.cam_store as cs

    class KillBeforeIdLine:
        def __init__(self, f):
            self.f, self.lines = f, 0

        def write(self, b):
            self.lines += 1
            if self.lines == k:
                open(once_file, 'w').close()
                os.kill(os.getpid(), signal.SIGKILL)
            return self.f.write(b)

        def __getattr__(self, name):
            return getattr(self.f, name)

    init = cs.CAMStoreWriter.__init__

    def killing_init(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self._ids = KillBeforeIdLine(self._ids)

    cs.CAMStoreWriter.__init__ = killing_init
