"""``winback._parallel.one_blas_thread``: BLAS held to one thread inside, the previous limits back
after the last caller leaves, and the fits' results the same bits either way."""

from __future__ import annotations

import contextlib
import threading

import numpy as np
import pytest
import scipy.optimize  # noqa: F401  (loads SciPy's own OpenBLAS, as a fit does)
from threadpoolctl import threadpool_info, threadpool_limits

from winback import _parallel
from winback.datasets import load_cdnow
from winback.models import BetaGeoModel
from winback.summary import summary


def _blas_threads() -> list[int]:
    return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]


@pytest.fixture
def two_blas_threads():
    """Every BLAS at two threads during the test (one-core machines too), restored after."""
    if not _blas_threads():
        pytest.skip("no BLAS library that threadpoolctl can see")
    with threadpool_limits(limits=2, user_api="blas"):
        yield


def test_one_thread_inside_and_limits_restored_after(two_blas_threads: None) -> None:
    assert set(_blas_threads()) == {2}
    with _parallel.one_blas_thread():
        assert set(_blas_threads()) == {1}
        with _parallel.one_blas_thread():  # nested: the inner exit keeps the limit
            assert set(_blas_threads()) == {1}
        assert set(_blas_threads()) == {1}
    assert set(_blas_threads()) == {2}


def test_limits_restored_when_the_block_raises(two_blas_threads: None) -> None:
    with pytest.raises(ZeroDivisionError), _parallel.one_blas_thread():
        _ = 1 / 0
    assert set(_blas_threads()) == {2}


def test_concurrent_blocks_share_one_limit(two_blas_threads: None) -> None:
    inside = threading.Barrier(5)

    def work() -> None:
        with _parallel.one_blas_thread():
            inside.wait()  # all four threads and the main one inside at once

    threads = [threading.Thread(target=work) for _ in range(4)]
    with _parallel.one_blas_thread():
        for t in threads:
            t.start()
        inside.wait()
        for t in threads:
            t.join()
        assert set(_blas_threads()) == {1}  # the threads left; the main thread is still inside
    assert set(_blas_threads()) == {2}
    assert _parallel._blas["users"] == 0


def test_fit_is_the_same_bits_with_threaded_blas(
    two_blas_threads: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = summary(load_cdnow(), unit="D")
    one = BetaGeoModel().fit(data)
    monkeypatch.setattr("winback.models._fitting.one_blas_thread", lambda: contextlib.nullcontext())
    threaded = BetaGeoModel().fit(data)
    assert one.params_ == threaded.params_
    assert one.log_likelihood_ == threaded.log_likelihood_
    assert np.array_equal(
        one.expected_purchases(30.0, data).to_numpy(),
        threaded.expected_purchases(30.0, data).to_numpy(),
    )
