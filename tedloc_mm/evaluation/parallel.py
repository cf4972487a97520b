"""Run the per-image evaluation over worker threads, one contiguous chunk per task.

Threads, not processes: the compiled component sweep (:mod:`.component_tree`,
``numba.njit(nogil=True)``), OpenCV and most NumPy calls release the GIL, so
threads share the maps without pickling them, and a result is a compact record
of a few hundred bytes. Records are returned in input order; the summary sums
them, so the numbers do not depend on the number of workers.
"""
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Callable, List, Optional, Sequence


def chunk_bounds(num: int, workers: int, max_chunk: int = 32) -> List[range]:
    """Contiguous index ranges: about 4 per worker (for load balance and a live
    progress bar), at most ``max_chunk`` items each."""
    if num <= 0:
        return []
    size = max(1, min(max_chunk, -(-num // (4 * max(1, workers)))))
    return [range(i, min(i + size, num)) for i in range(0, num, size)]


def map_in_threads(fn: Callable[[int], object], num: int, workers: int = 1,
                   progress: Optional[Callable[[int], None]] = None) -> List[object]:
    """``[fn(i) for i in range(num)]`` over ``workers`` threads.

    Args:
        fn: the work of one item (must be thread-safe; it raises on bad input).
        num: number of items.
        workers: threads; 1 runs in the calling thread (no pool).
        progress: called with the number of items just finished (from the
            calling thread), e.g. ``ProgressBar.update`` in a loop.

    Returns:
        The results in index order. The first failing chunk in index order
        re-raises its exception; chunks not yet started are cancelled.
    """
    workers = int(workers)
    if workers < 1:
        raise ValueError(f'workers must be >= 1, got {workers}')
    chunks = chunk_bounds(num, workers)

    def run(chunk: Sequence[int]) -> list:
        return [fn(i) for i in chunk]

    if workers == 1 or len(chunks) <= 1:
        out = []
        for chunk in chunks:
            out.extend(run(chunk))
            if progress is not None:
                progress(len(chunk))
        return out
    results: List[Optional[list]] = [None] * len(chunks)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(run, c): k for k, c in enumerate(chunks)}
        pending = set(futures)
        failed = False
        while pending and not failed:
            done, pending = wait(pending, return_when='FIRST_COMPLETED')
            for fut in done:
                if fut.exception() is not None:
                    failed = True
                    continue
                results[futures[fut]] = fut.result()
                if progress is not None:
                    progress(len(chunks[futures[fut]]))
        if failed:
            for fut in pending:
                fut.cancel()
            wait(pending)
            # re-raise the error of the earliest chunk, whatever finished first
            for fut, k in sorted(futures.items(), key=lambda kv: kv[1]):
                if not fut.cancelled() and fut.exception() is not None:
                    raise fut.exception()
    return [r for chunk in results for r in chunk]
