"""One thread pool for the Python side: the twin of ``rust/core/src/parallelism.rs``.

Work is cut into chunks that depend only on the data size (never on the thread count), chunks run
on a shared pool of ``effective_threads()`` workers (``num_threads=`` / ``WINBACK_NUM_THREADS``,
else all cores), and results come back in chunk order. Kernels that run here release the GIL
(Numba ``nogil`` or SciPy's special functions), so plain threads give real parallelism; a sum over
chunks added in chunk order is the same bits on any number of threads (docs/methods.md#determinism).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from winback._winback import effective_threads

__all__ = ["chunk_bounds", "map_chunks", "one_blas_thread", "submit", "thread_count"]

_T = TypeVar("_T")
_pools: dict[int, ThreadPoolExecutor] = {}
_lock = threading.Lock()
_inside = threading.local()
_blas_lock = threading.Lock()
_blas = {"users": 0}
_blas_state: dict[str, Any] = {"controller": None, "limiter": None}


def thread_count(num_threads: int | None = None) -> int:
    """Worker threads for ``num_threads`` (None: ``WINBACK_NUM_THREADS``, else all cores)."""
    return int(effective_threads(num_threads))


def _pool(n_threads: int) -> ThreadPoolExecutor:
    with _lock:
        pool = _pools.get(n_threads)
        if pool is None:
            pool = _pools[n_threads] = ThreadPoolExecutor(n_threads, thread_name_prefix="winback")
        return pool


def chunk_bounds(n: int, chunk: int) -> list[tuple[int, int]]:
    """``[lo, hi)`` ranges of ``range(n)``, each ``chunk`` long but the last.

    >>> chunk_bounds(5, 2)
    [(0, 2), (2, 4), (4, 5)]
    """
    if chunk < 1:
        raise ValueError(f"chunk={chunk} must be at least 1")
    return [(lo, min(lo + chunk, n)) for lo in range(0, n, chunk)]


def map_chunks(
    work: Callable[[int, int], _T],
    bounds: Sequence[tuple[int, int]],
    num_threads: int | None = None,
) -> list[_T]:
    """``work(lo, hi)`` for every range in ``bounds``, on the shared pool; results in ``bounds``
    order. One range, one thread, or a call from inside a pool worker (nested work would wait
    on its own pool) runs on the calling thread."""
    threads = min(thread_count(num_threads), len(bounds))
    if threads <= 1 or getattr(_inside, "active", False):
        return [work(lo, hi) for lo, hi in bounds]

    def run(bound: tuple[int, int]) -> _T:
        _inside.active = True
        try:
            return work(*bound)
        finally:
            _inside.active = False

    return list(_pool(threads).map(run, bounds))


def submit(work: Callable[[], _T], num_threads: int | None = None) -> Future[_T]:
    """``work()`` on the shared pool, beside the caller's own work (which may itself use the
    pool: its chunks queue behind ``work``); ``.result()`` returns it or raises its error.
    Inside ``work``, :func:`map_chunks` runs on its thread (as nested work does). One thread,
    or a call from inside a pool worker: ``work()`` runs now, on the calling thread. The result
    does not depend on where it ran (docs/methods.md#determinism)."""
    if thread_count(num_threads) <= 1 or getattr(_inside, "active", False):
        done: Future[_T] = Future()
        try:
            done.set_result(work())
        except BaseException as error:  # re-raised by .result(), as the pool's futures do
            done.set_exception(error)
        return done

    def run() -> _T:
        _inside.active = True
        try:
            return work()
        finally:
            _inside.active = False

    return _pool(thread_count(num_threads)).submit(run)


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    """BLAS and LAPACK (NumPy's and SciPy's OpenBLAS) held to one thread inside the block, the
    previous limits restored when the last caller leaves (nested and concurrent blocks share one
    limit).

    SciPy's L-BFGS-B calls LAPACK on matrices of a few rows every iteration; with its default
    thread pool OpenBLAS wakes (and then spins) a worker thread on every call, which cost
    ≈ 0.3 s of wall time per :func:`winback.value` on CDNOW and as much CPU again on the other
    core, for no gain at that size (benches/README.md, "Issue 18: start-up (report18)"). The
    arithmetic is the same on one thread: the results are the same bits
    (docs/methods.md#determinism).
    """
    with _blas_lock:
        if _blas["users"] == 0:
            if _blas_state["controller"] is None:  # scans the loaded libraries once (≈ 5 ms)
                from threadpoolctl import ThreadpoolController

                _blas_state["controller"] = ThreadpoolController()
            _blas_state["limiter"] = _blas_state["controller"].limit(limits=1, user_api="blas")
        _blas["users"] += 1
    try:
        yield
    finally:
        with _blas_lock:
            _blas["users"] -= 1
            if _blas["users"] == 0:
                _blas_state["limiter"].restore_original_limits()
                _blas_state["limiter"] = None
