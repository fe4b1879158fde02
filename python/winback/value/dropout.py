"""The periodic BG/NBD: the monthly Poisson–Gamma panel with a per-period dropout process
(docs/methods.md#periodic-bg-nbd).

In every period a live customer makes X_k | λ ~ Poisson(λ) occasions, λ ~ Gamma(shape r, rate α)
across customers; after each *active* period (one with an occasion, the birth period included) the
customer drops out for good with probability p, p ~ Beta(a, b) across customers. A customer's
modelling history (the T complete periods after the birth period, docs/methods.md#periods) enters
through four statistics: X (occasions in them), t_x (index 0 … T of the last active period, 0 when
only the birth period is active), k (active periods, the birth period included) and T.

The likelihood, up to the Poisson normalising constant (which does not involve the parameters)::

    L = Γ(r+X)/Γ(r) α^r [ B(a+1, b+k−1)/B(a,b) (α+t_x)^−(r+X) + B(a, b+k)/B(a,b) (α+T)^−(r+X) ]

(dropped right after period t_x, or still alive and silent through T). P(alive at the end of T)
is the second term's share; given alive, λ ~ Gamma(r+X, α+T) and p ~ Beta(a, b+k), independent.
The expected occasions over the next h periods, given alive, is::

    E = Σ_{m=0}^{h−1} (−1)^m C(h, m+1) E[p^m] E[λ (1 − e^−λ)^m]

(a live customer survives a period with probability 1 − p (1 − e^−λ)), with
E[p^m] = Π_{i<m} (a+i)/(a+b'+i) and E[λ (1−e^−λ)^m] = Σ_l C(m,l) (−1)^l r'/α' (α'/(α'+l))^(r'+1):
finite sums, exact. P(no occasion in h periods) = (1 − P(alive)) + P(alive) (α'/(α'+h))^r'.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Self

import numpy as np
import polars as pl
from numpy.typing import NDArray
from scipy import optimize, special

from winback._parallel import one_blas_thread
from winback.errors import WinbackFitError, WinbackInputError

__all__ = ["STAT_COLUMNS", "PeriodicBGNBD", "distinct_rows", "dropout_statistics"]

FloatArray = NDArray[np.float64]

#: The per-customer statistics the model reads: occasions X, last active period t_x, active
#: periods k (birth included) and modelling periods T (docs/methods.md#periodic-bg-nbd).
STAT_COLUMNS = ("period_frequency", "last_active_offset", "active_periods", "n_periods")


def dropout_statistics(panel: pl.DataFrame, n_complete: int) -> pl.DataFrame:
    """Per customer of the value panel (``customer_id``, ``period``, ``occasions``), in
    ``customer_id`` order: ``birth`` (the first active period) and the model's statistics
    t_x (``last_active_offset``) and k (``active_periods``) over the complete periods.
    Customers born in the incomplete period get nulls."""
    active = (pl.col("occasions") > 0) & (pl.col("period") < n_complete)
    return (
        panel.group_by("customer_id")
        .agg(
            pl.col("period").filter(active).min().alias("_birth"),
            pl.col("period").filter(active).max().alias("_last"),
            active.sum().cast(pl.Int64).alias("active_periods"),
        )
        .select(
            "customer_id",
            (pl.col("_last") - pl.col("_birth")).cast(pl.Int64).alias("last_active_offset"),
            pl.when(pl.col("_birth").is_not_null()).then(pl.col("active_periods")),
        )
        .sort("customer_id")
    )


def _arrays(data: Any) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    frame = data if isinstance(data, pl.DataFrame) else pl.DataFrame(data)
    missing = [c for c in STAT_COLUMNS if c not in frame.columns]
    if missing:
        raise WinbackInputError(
            f"periodic BG/NBD: column(s) {missing} are missing; it needs {list(STAT_COLUMNS)} "
            "(winback.value(..., forecast='dropout') computes them)"
        )
    X, t, k, T = (frame.get_column(c).cast(pl.Float64).to_numpy() for c in STAT_COLUMNS)
    bad = ~(
        np.isfinite(X)
        & np.isfinite(t)
        & np.isfinite(k)
        & np.isfinite(T)
        & (X >= 0)
        & (t >= 0)
        & (t <= T)
        & (k >= 1)
        & (k <= T + 1)
        & (k - 1 <= X)
        & ((k > 1) | (t == 0))
    )
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise WinbackInputError(
            f"periodic BG/NBD: row {row} has inconsistent statistics "
            f"(X={X[row]}, t_x={t[row]}, k={k[row]}, T={T[row]}); need 0 ≤ t_x ≤ T, "
            "1 ≤ k ≤ T+1, k−1 ≤ X, and t_x = 0 when k = 1"
        )
    return X, t, k, T


def distinct_rows(*columns: FloatArray) -> tuple[FloatArray, NDArray[np.int64], FloatArray]:
    """Distinct rows of whole-number columns: (the rows, the inverse mapping, how many of
    each). The rows are packed into one integer key (exact: each column's range fits), which
    is much faster than ``np.unique(axis=0)``; the distinct rows come in key order, the same
    for any row order."""
    ints = [np.asarray(c, dtype=np.int64) for c in columns]
    if math.prod(int(c.max(initial=0)) + 1 for c in ints) >= 2**62:  # too wide to pack
        unique, inverse, counts = np.unique(
            np.stack(columns, axis=1), axis=0, return_inverse=True, return_counts=True
        )
        return unique, inverse.ravel().astype(np.int64), counts.astype(np.float64)
    key = np.zeros(ints[0].shape[0], dtype=np.int64)
    for column in ints:
        key = key * (int(column.max(initial=0)) + 1) + column
    _, first, inverse, counts = np.unique(
        key, return_index=True, return_inverse=True, return_counts=True
    )
    unique = np.stack([c[first] for c in columns], axis=1).astype(np.float64)
    return unique, inverse.ravel().astype(np.int64), counts.astype(np.float64)


def _by_value(stats: FloatArray) -> list[tuple[FloatArray, NDArray[np.int64]]]:
    """Per column of ``stats``: its distinct values and every row's index into them."""
    out = []
    for column in stats.T:
        values, index = np.unique(column, return_inverse=True)
        out.append((values, index.ravel().astype(np.int64)))
    return out


class PeriodicBGNBD:
    """Periodic BG/NBD (docs/methods.md#periodic-bg-nbd): ``params_`` has ``r``, ``alpha``
    (the Gamma purchase rate per period) and ``a``, ``b`` (the Beta dropout probability after an
    active period); ``log_likelihood_`` is the maximised log-likelihood (without the Poisson
    constant)."""

    params_: dict[str, float]
    log_likelihood_: float
    n_customers_: int

    # -- likelihood -------------------------------------------------------------------------------
    @staticmethod
    def _log_terms(
        params: FloatArray, X: FloatArray, t: FloatArray, k: FloatArray, T: FloatArray
    ) -> tuple[FloatArray, FloatArray, FloatArray]:
        """(shared part, log of the dropped-after-t_x term, log of the alive term)."""
        r, alpha, a, b = params
        shared = special.gammaln(r + X) - special.gammaln(r) + r * np.log(alpha)
        dropped = (
            special.betaln(a + 1.0, b + k - 1.0)
            - special.betaln(a, b)
            - (r + X) * np.log(alpha + t)
        )
        alive = special.betaln(a, b + k) - special.betaln(a, b) - (r + X) * np.log(alpha + T)
        return shared, dropped, alive

    @staticmethod
    def _log_terms_by_value(
        params: FloatArray, columns: Sequence[tuple[FloatArray, NDArray[np.int64]]]
    ) -> tuple[FloatArray, FloatArray, FloatArray]:
        """:meth:`_log_terms` from each statistic's distinct values and every row's index into
        them (``columns``: (values, index) for X, t_x, k, T): each special function is
        evaluated once per distinct value and gathered, then combined as there (the same
        bits; the fit's tuples have a few hundred distinct X and a few dozen t_x, k, T)."""
        (xv, xi), (tv, ti), (kv, ki), (Tv, Ti) = columns
        r, alpha, a, b = params
        shared = (special.gammaln(r + xv) - special.gammaln(r) + r * np.log(alpha))[xi]
        rx = (r + xv)[xi]
        dropped = (special.betaln(a + 1.0, b + kv - 1.0) - special.betaln(a, b))[ki] - rx * (
            np.log(alpha + tv)[ti]
        )
        alive = (special.betaln(a, b + kv) - special.betaln(a, b))[ki] - rx * (
            np.log(alpha + Tv)[Ti]
        )
        return shared, dropped, alive

    def _negative_ll(
        self,
        log_params: FloatArray,
        columns: Sequence[tuple[FloatArray, NDArray[np.int64]]],
        weights: FloatArray,
    ) -> float:
        params = np.exp(log_params)
        shared, dropped, alive = self._log_terms_by_value(params, columns)
        ll = shared + np.logaddexp(dropped, alive)
        value = -float((weights * ll).sum())
        return value if math.isfinite(value) else 1e300

    def fit(self, data: Any) -> Self:
        """Maximum likelihood on the customers' (X, t_x, k, T) (:data:`STAT_COLUMNS`), over
        their distinct tuples; raises :class:`~winback.WinbackFitError` when it does not
        converge to finite parameters."""
        X, t, k, T = _arrays(data)
        if X.size == 0:
            raise WinbackFitError("periodic BG/NBD: no customers to fit on")
        unique, _, weights = distinct_rows(X, t, k, T)
        if not (T > 0).any():
            raise WinbackFitError(
                "periodic BG/NBD: no customer has a complete period after their first; "
                "nothing to learn the purchase rate or the dropout from"
            )
        mean_rate = max(float(X.sum()) / max(float(T.sum()), 1.0), 1e-3)
        start = np.log([1.0, 1.0 / mean_rate, 1.0, 3.0])
        with one_blas_thread():  # LAPACK on a few rows: OpenBLAS's threads only cost time
            result = optimize.minimize(
                self._negative_ll,
                start,
                args=(_by_value(unique), weights),
                method="L-BFGS-B",
                bounds=[(-12.0, 12.0)] * 4,
            )
        params = np.exp(result.x)
        if not (np.all(np.isfinite(params)) and math.isfinite(result.fun) and result.fun < 1e299):
            raise WinbackFitError(f"periodic BG/NBD: the fit did not converge ({result.message})")
        self.params_ = dict(zip(("r", "alpha", "a", "b"), map(float, params), strict=True))
        self.log_likelihood_ = -float(result.fun)
        self.n_customers_ = int(X.size)
        return self

    # -- predictions ------------------------------------------------------------------------------
    def _params(self) -> tuple[float, float, float, float]:
        p = self.params_
        return p["r"], p["alpha"], p["a"], p["b"]

    def _alive(self, X: FloatArray, t: FloatArray, k: FloatArray, T: FloatArray) -> FloatArray:
        _, dropped, alive = self._log_terms(np.array(self._params()), X, t, k, T)
        return np.asarray(special.expit(alive - dropped))

    def probability_alive(self, data: Any) -> FloatArray:
        """P(still alive at the end of the last complete period | history) per row."""
        return self._alive(*_arrays(data))

    def _expected_alive(self, h: int, X: FloatArray, k: FloatArray, T: FloatArray) -> FloatArray:
        """E[occasions over the next h periods | history, alive] (the finite sums above)."""
        r, alpha, a, b = self._params()
        rp, ap, bp = r + X, alpha + T, b + k
        mean = rp / ap
        total = np.zeros_like(X)
        moment_p = np.ones_like(X)  # E[p^m], built up one factor at a time
        for m in range(h):
            if m:
                moment_p = moment_p * (a + m - 1) / (a + bp + m - 1)
            lam_q = np.zeros_like(X)
            for ell in range(m + 1):
                lam_q += (
                    math.comb(m, ell)
                    * (-1.0) ** ell
                    * mean
                    * np.exp((rp + 1.0) * (np.log(ap) - np.log(ap + ell)))
                )
            total += (-1.0) ** m * math.comb(h, m + 1) * moment_p * lam_q
        return np.maximum(total, 0.0)

    def expected_count(self, h: int, data: Any) -> FloatArray:
        """E[occasions over the next ``h`` periods | history] per row."""
        if not isinstance(h, int) or h < 1:
            raise WinbackInputError(f"periodic BG/NBD: h={h!r} must be a whole number ≥ 1")
        X, t, k, T = _arrays(data)
        unique, inverse, _ = distinct_rows(X, t, k, T)
        ux, ut, uk, uT = unique.T
        values = self._alive(ux, ut, uk, uT) * self._expected_alive(h, ux, uk, uT)
        return np.asarray(values[inverse])

    def probability_active(self, h: int, data: Any) -> FloatArray:
        """P(at least one occasion in the next ``h`` periods | history) per row."""
        if not isinstance(h, int) or h < 1:
            raise WinbackInputError(f"periodic BG/NBD: h={h!r} must be a whole number ≥ 1")
        X, t, k, T = _arrays(data)
        r, alpha, _, _ = self._params()
        alive = self._alive(X, t, k, T)
        silent = np.exp((r + X) * (np.log(alpha + T) - np.log(alpha + T + h)))
        return np.asarray(alive * (1.0 - silent))

    def expected_by_period(self, h: int, data: Any) -> FloatArray:
        """E[occasions in each of the next ``h`` periods | history], an (n, h) array (column
        t − 1 for period t; the row sums are :meth:`expected_count`), docs/methods.md#clv.

        A customer alive at the start of a period survives it with probability 1 − p(1 − e^−λ),
        so period t's expectation is P(alive) · E[λ ((1 − p) + p e^−λ)^(t−1)]; expanding the
        power gives a sum of positive terms,
        Σ_j C(t−1, j) B(a+j, b′+t−1−j)/B(a, b′) · (r′/α′)(α′/(α′+j))^(r′+1),
        exact and free of the alternating sum's cancellation at long horizons."""
        if not isinstance(h, int) or h < 1:
            raise WinbackInputError(f"periodic BG/NBD: h={h!r} must be a whole number ≥ 1")
        X, t, k, T = _arrays(data)
        # The sums depend on (X, k, T) only; P(alive) also on t_x.
        unique, inverse, _ = distinct_rows(X, k, T)
        ux, uk, uT = unique.T
        r, alpha, a, b = self._params()
        rp, ap, bp = r + ux, alpha + uT, b + uk
        # E[λ e^−λj] for j = 0 … h−1 (one column each).
        lam = np.exp(
            (np.log(rp) - np.log(ap))[:, None]
            + (rp + 1.0)[:, None]
            * (np.log(ap)[:, None] - np.log(ap[:, None] + np.arange(h, dtype=np.float64)))
        )
        # The Beta–binomial weights C(n, j) B(a+j, b′+n−j)/B(a, b′) depend on k only: one row
        # per distinct k. Positive terms, summed in a fixed order (no BLAS).
        ks, k_index = np.unique(bp, return_inverse=True)
        k_index = k_index.ravel()
        out = np.empty((ux.size, h))
        for n in range(h):
            j = np.arange(n + 1, dtype=np.float64)
            weights = np.exp(
                special.gammaln(n + 1.0)
                - special.gammaln(j + 1.0)
                - special.gammaln(n - j + 1.0)
                + special.betaln(a + j, ks[:, None] + (n - j))
                - special.betaln(a, ks)[:, None]
            )
            out[:, n] = (weights[k_index] * lam[:, : n + 1]).sum(axis=1)
        return np.asarray(self._alive(X, t, k, T)[:, None] * out[inverse])
