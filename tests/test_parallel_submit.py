"""`winback._parallel.submit`: work beside the caller on the shared pool, its result or its
error returned by ``.result()``, on the calling thread with one thread or inside a worker."""

from __future__ import annotations

import threading

import pytest

from winback._parallel import chunk_bounds, map_chunks, submit


def test_submit_runs_on_the_pool_with_two_threads() -> None:
    caller = threading.get_ident()
    assert submit(threading.get_ident, num_threads=2).result() != caller


def test_submit_runs_on_the_calling_thread_with_one_thread() -> None:
    future = submit(threading.get_ident, num_threads=1)
    assert future.done()
    assert future.result() == threading.get_ident()


def test_submit_returns_the_error_from_result() -> None:
    def fail() -> None:
        raise KeyError("boom")

    for threads in (1, 2):
        with pytest.raises(KeyError, match="boom"):
            submit(fail, num_threads=threads).result()


def test_map_chunks_inside_submitted_work_runs_on_its_thread_in_order() -> None:
    def work() -> tuple[list[tuple[int, int]], set[int]]:
        seen: set[int] = set()

        def chunk(lo: int, hi: int) -> tuple[int, int]:
            seen.add(threading.get_ident())
            return lo, hi

        return map_chunks(chunk, chunk_bounds(10, 3), num_threads=2), seen

    parts, threads = submit(work, num_threads=2).result()
    assert parts == chunk_bounds(10, 3)
    assert len(threads) == 1
    assert threading.get_ident() not in threads
