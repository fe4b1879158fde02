"""The recency Markov chain of docs/methods.md#markov: states (recency, frequency bucket, spend
bin), observed transitions smoothed toward the model-implied rows with the Dirichlet weight κ,
rewards and the horizon and infinite-horizon values."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import polars as pl
from numpy.typing import NDArray
from scipy import optimize, sparse, special
from scipy.sparse import linalg as sparse_linalg

from winback._kernels import value as kernels
from winback.errors import WinbackConfigError
from winback.value.panel import bin_expr
from winback.value.result import MarkovChain

__all__ = ["KAPPA_BOUNDS", "build_chain", "evidence_kappa", "state_means"]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


def state_means(
    index: IntArray, values: FloatArray, n_states: int
) -> tuple[FloatArray, FloatArray]:
    """Per state (``index``): the mean of ``values`` (rows, or (rows, k) column by column; NaN
    for an empty state) and the number of rows."""
    counts = np.bincount(index, minlength=n_states).astype(np.float64)
    if values.ndim == 1:
        sums = np.bincount(index, weights=values, minlength=n_states)
        with np.errstate(divide="ignore", invalid="ignore"):
            return sums / counts, counts
    # Column by column, each sum in row order (as np.add.at did, faster).
    table = np.stack(
        [
            np.bincount(index, weights=values[:, k], minlength=n_states)
            for k in range(values.shape[1])
        ],
        axis=1,
    ).reshape(n_states, values.shape[1])
    with np.errstate(divide="ignore", invalid="ignore"):
        return table / counts[:, None], counts


def _state_labels(max_recency: int, buckets: Sequence[int], n_m: int) -> pl.DataFrame:
    f_names = []
    for b, low in enumerate(buckets):
        if b + 1 == len(buckets):
            f_names.append(f"{low}+")
        elif buckets[b + 1] - 1 == low:
            f_names.append(str(low))
        else:
            f_names.append(f"{low}-{buckets[b + 1] - 1}")
    rows = []
    for r in range(max_recency + 1):
        r_name = f"{r}+" if r == max_recency else str(r)
        for f, f_name in enumerate(f_names):
            for m in range(n_m):
                rows.append((r, f, m, f"r{r_name}|f{f_name}|m{m}"))
    return pl.DataFrame(
        rows, schema=["recency", "frequency_bucket", "spend_bin", "label"], orient="row"
    ).with_row_index("state")


#: Search range of the Dirichlet weight κ.
KAPPA_BOUNDS = (1e-3, 1e7)


def evidence_kappa(counts: FloatArray, prior: FloatArray) -> float:
    """The κ maximising the Dirichlet-multinomial evidence (docs/methods.md#markov), as the root of
    its derivative in ln κ,
    κ Σ_s [ψ(κ) − ψ(κ + N_s) + Σ_s' π₀(s'|s) (ψ(κπ₀ + N_ss') − ψ(κπ₀))],
    over the observed rows. The root is found to full precision (a maximiser of the evidence
    itself stops where the evidence is flat to rounding, ~1e-8 in ln κ, so the last digits of
    CLV followed rounding noise in the inputs). Falls back to the better end of
    :data:`KAPPA_BOUNDS` when the derivative does not change sign, and keeps the root only
    when its evidence beats both ends."""
    observed = counts.sum(axis=1) > 0
    n_s = counts.sum(axis=1)[observed]
    cells = prior[observed] > 0
    weights, n = prior[observed][cells], counts[observed][cells]

    def slope(log_k: float) -> float:
        k = math.exp(log_k)
        rows = float(np.sum(special.digamma(k) - special.digamma(k + n_s)))
        inner = float(
            np.sum(weights * (special.digamma(k * weights + n) - special.digamma(k * weights)))
        )
        return k * (rows + inner)

    low, high = (math.log(b) for b in KAPPA_BOUNDS)
    candidates = list(KAPPA_BOUNDS)
    if n_s.size and slope(low) > 0 > slope(high):
        root = optimize.brentq(slope, low, high, xtol=1e-14, rtol=1e-15)
        candidates.append(math.exp(float(root)))
    return max(candidates, key=lambda k: kernels.log_evidence(k, counts, prior))


def build_chain(
    *,
    panel: pl.DataFrame,
    current_state: IntArray,
    cells: FloatArray,
    next_margin: FloatArray,
    expected_amount: FloatArray,
    expected_expense: FloatArray,
    n_complete: int,
    max_recency: int,
    buckets: Sequence[int],
    spend_edges: Sequence[float],
    kappa: float | str,
    horizon: int,
    discount_rate: float,
) -> MarkovChain:
    """docs/methods.md#markov: counts, Dirichlet smoothing toward the model-implied rows, rewards
    and values."""
    n_f, n_m = len(buckets), len(spend_edges) + 1
    R = max_recency
    n_states = (R + 1) * n_f * n_m
    active = panel.filter((pl.col("occasions") > 0) & (pl.col("period") < n_complete)).select(
        "customer_id",
        "period",
        "revenue",
        bin_expr("occasions", list(buckets[1:])).alias("f_bin"),
        bin_expr("_mean", list(spend_edges)).alias("m_bin"),
    )
    sizes = active.group_by("customer_id", maintain_order=True).len().get_column("len").to_numpy()
    starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    counts = kernels.transition_counts(
        starts,
        active.get_column("period").to_numpy().astype(np.int64),
        active.get_column("f_bin").to_numpy().astype(np.int64),
        active.get_column("m_bin").to_numpy().astype(np.int64),
        n_complete,
        R,
        n_f,
        n_m,
    )
    # Model-implied rows: the customers currently in s, else those with the same recency, else all.
    mean_cells, in_state = state_means(current_state, cells, n_states)
    recency_of = np.arange(n_states) // (n_f * n_m)
    r_cells, _ = state_means(recency_of[current_state], cells, R + 1)
    r_counts = np.bincount(recency_of[current_state], minlength=R + 1).astype(np.float64)
    global_cells = cells.mean(axis=0) if cells.shape[0] else np.zeros(cells.shape[1])
    prior = np.zeros((n_states, n_states))
    for s in range(n_states):
        r, rest = divmod(s, n_f * n_m)
        f, m = divmod(rest, n_m)
        if in_state[s] > 0:
            row = mean_cells[s]
        elif r_counts[r] > 0:
            row = r_cells[r]
        else:
            row = global_cells
        row = np.maximum(row, 1e-300)
        row = row / row.sum()
        # The kernel's plain-Python twin: a call from Python would compile a specialisation.
        prior[s, kernels.state_index.py_func(min(r + 1, R), f, m, n_f, n_m)] = row[0]
        prior[s, kernels.state_index.py_func(0, 0, 0, n_f, n_m) : n_f * n_m] = row[1:]
    kappa_value = evidence_kappa(counts, prior) if kappa == "evidence" else float(kappa)
    n_s = counts.sum(axis=1)
    P = (counts + kappa_value * prior) / (n_s + kappa_value)[:, None]
    # Rewards: expected amount from the chain's purchase cells × margin − expense share.
    # numpy sums in row order (the panel's customer-then-period order): a Polars group-by mean
    # may add in another order from run to run, which changed CLVs in the last bits.
    revenue = active.get_column("revenue").to_numpy().astype(np.float64)
    cell = active.get_column("f_bin").to_numpy().astype(np.int64) * n_m + active.get_column(
        "m_bin"
    ).to_numpy().astype(np.int64)
    cell_sums = np.bincount(cell, weights=revenue, minlength=n_f * n_m)
    cell_counts = np.bincount(cell, minlength=n_f * n_m)
    overall = float(revenue.sum() / revenue.size) if revenue.size else 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        amounts = np.where(cell_counts > 0, cell_sums / cell_counts, overall)
    expected_amounts = P[:, : n_f * n_m] @ amounts
    sums = np.bincount(current_state, weights=expected_amount, minlength=n_states)
    margin_sums = np.bincount(
        current_state, weights=expected_amount * next_margin, minlength=n_states
    )
    expense_sums = np.bincount(current_state, weights=expected_expense, minlength=n_states)
    total = float(expected_amount.sum())
    global_margin = float((expected_amount * next_margin).sum()) / total if total > 0 else 1.0
    global_expense = float(expected_expense.sum()) / total if total > 0 else 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        margin_s = np.where(sums > 0, margin_sums / sums, global_margin)
        expense_s = np.where(sums > 0, expense_sums / sums, global_expense)
    reward = expected_amounts * (margin_s - expense_s)
    delta = 1.0 / (1.0 + discount_rate)
    P_sparse = sparse.csr_array(P)
    v = np.zeros(n_states)
    with np.errstate(over="ignore", invalid="ignore"):  # overflow is refused just below
        for _ in range(horizon):
            v = delta * (reward + P_sparse @ v)
    if not np.isfinite(v).all():
        raise WinbackConfigError(
            f"horizon={horizon} with discount_rate={discount_rate!r}: the discounted values "
            "overflow the float range (δ^H = (1 + d)^−H grows without bound for d < 0); use a "
            "shorter horizon or a discount rate ≥ 0 (docs/methods.md#markov)"
        )
    value_infinite = pl.Series("value_infinite", [None] * n_states, dtype=pl.Float64)
    if discount_rate > 0:
        # δ < 1: the infinite sum converges. For d ≤ 0 it diverges (P is stochastic), and a
        # solve would return a meaningless finite number: the value is left null instead.
        identity = sparse.identity(n_states, format="csc")
        v_inf = sparse_linalg.spsolve((identity - delta * P_sparse).tocsc(), delta * reward)
        value_infinite = pl.Series("value_infinite", np.asarray(v_inf, dtype=np.float64))
    states = _state_labels(R, buckets, n_m).with_columns(
        pl.Series("customers", in_state.astype(np.int64)),
        pl.Series("transitions", n_s),
        pl.Series("reward", reward),
        pl.Series("value", v),
        value_infinite,
    )
    return MarkovChain(
        states=states,
        transition_matrix=P_sparse,
        counts=sparse.csr_array(counts),
        prior=sparse.csr_array(prior),
        kappa=kappa_value,
        horizon=horizon,
        discount_rate=discount_rate,
    )
