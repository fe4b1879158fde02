"""The numerical half of :func:`winback.value`: fits the period NBD and the Gamma–Gamma model
on the modelled customers, forecasts their next period, applies the margin, expense and tier
rules (docs/methods.md#value), builds the Markov chain and the CLV (docs/methods.md#markov) and
assembles the result. Imported on first use (numba, scipy and the models load here)."""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Mapping
from typing import Any, TypeVar

import numpy as np
import polars as pl

from winback._parallel import submit
from winback.errors import WinbackFitError, WinbackInputError
from winback.models import BaseModel, GammaGammaModel, NBDModel
from winback.value.forecast import next_period, probability_alive
from winback.value.margins import expected_expenses, next_margins
from winback.value.markov import (
    ChainRows,
    build_chain,
    chain_rows,
    customer_values,
    lapse_fit,
    state_means,
    tally_chain_rows,
)
from winback.value.panel import PanelHandle
from winback.value.result import (
    FITTED,
    PMF_MAX,
    POPULATION_DEFAULT,
    VALUE_COLUMNS,
    ValueInfo,
    ValueResult,
    ValueWarning,
)
from winback.value.tiers import tier_codes, tier_names, tier_series

__all__ = ["fit_and_score"]

_NOT_MODELLED = "first purchase in the incomplete current period: no complete period to model"

_Model = TypeVar("_Model", bound=BaseModel)


def _fixed_model(
    model: _Model, params: dict[str, float], data_summary: dict[str, float], n: int
) -> _Model:
    """``model`` holding fixed (not fitted) parameters: no standard errors, not converged."""
    model.params_ = params
    model.params_se_ = dict.fromkeys(params, math.nan)
    model.covariance_ = np.full((len(params), len(params)), math.nan)
    model.log_likelihood_ = math.nan
    model.converged_ = False
    model.n_iter_ = 0
    model.n_customers_ = n
    model.data_summary_ = data_summary
    return model


def default_nbd(m: pl.DataFrame) -> NBDModel:
    """The count model's population default (docs/methods.md#population-defaults): λ ~ Gamma(r =
    1, rate α = 1/λ̄), λ̄ = (ΣX + N)/(ΣT + N) the pooled rate per period with each customer's birth
    period counted as one period with one occasion (so λ̄ > 0 and finite)."""
    X = m.get_column("period_frequency").to_numpy().astype(np.float64)
    T = m.get_column("n_periods").to_numpy().astype(np.float64)
    rate = (float(X.sum()) + m.height) / (float(T.sum()) + m.height)
    observed = T > 0
    max_rate = float((X[observed] / T[observed]).max()) if observed.any() else rate
    model = NBDModel()
    model.frequency_col, model.periods_col = "period_frequency", "n_periods"
    return _fixed_model(model, {"r": 1.0, "alpha": 1.0 / rate}, {"max_rate": max_rate}, m.height)


def default_gamma_gamma(m: pl.DataFrame, panel: pl.DataFrame, n_complete: int) -> GammaGammaModel:
    """The spend model's population default (docs/methods.md#population-defaults): p = 1, q = 2,
    γ = m̄, the mean positive occasion amount of the modelled customers' complete periods, so
    E[M | x, z̄] = (m̄ + x z̄)/(x + 1): the customer's own mean shrunk by one occasion at m̄."""
    rows = panel.filter(pl.col("period") < n_complete).join(
        m.select("customer_id"), on="customer_id", how="semi"
    )
    occasions = float(rows.get_column("positive_occasions").sum())
    if occasions == 0:
        raise WinbackInputError(
            "value: no modelled customer has a positive amount in a complete period, so there is "
            "no spend to forecast; check the amount column (docs/methods.md#population-defaults)"
        )
    mean = float(rows.get_column("positive_revenue").sum()) / occasions
    spenders = m.filter(pl.col("spend_frequency") > 0).get_column("monetary_value")
    max_amount = float(spenders.max()) if spenders.len() else mean  # type: ignore[arg-type]
    model = GammaGammaModel()
    model.frequency_col, model.monetary_col = "spend_frequency", "monetary_value"
    return _fixed_model(
        model, {"p": 1.0, "q": 2.0, "gamma": mean}, {"max_amount": max(max_amount, mean)}, m.height
    )


def _fallback_warning(which: str, error: WinbackFitError, n: int) -> None:
    warnings.warn(
        ValueWarning(
            f"value: the {which} model could not be fitted on {n} modelled customer(s) ({error}); "
            "using its population defaults instead (docs/methods.md#population-defaults)"
        ),
        stacklevel=4,
    )


def fit_and_score(
    *,
    alive_summary: pl.DataFrame | None,
    panel: PanelHandle,
    customers: pl.DataFrame,
    info: ValueInfo,
    n_complete: int,
    margin: float | None,
    horizon: int,
    discount_rate: float,
    kappa: float | str,
    max_recency: int,
    frequency_buckets: list[int],
    tiers: Mapping[str, float],
    tier_by: str,
    customer_dtype: Any,
) -> ValueResult:
    """Fits the models on the modelled customers and builds the result (docs/methods.md#value,
    #markov). ``panel`` is taken (:meth:`PanelHandle.take`) by the chain, which lets go of it
    once read: the engine keeps no reference to it."""
    c = customers.with_columns(
        (pl.col("birth") < n_complete).alias("_modelled"),
        (n_complete - 1 - pl.col("birth")).clip(lower_bound=0).cast(pl.Int64).alias("n_periods"),
        pl.when(pl.col("spend_frequency") > 0)
        .then(pl.col("_spend_sum") / pl.col("spend_frequency"))
        .otherwise(0.0)
        .alias("monetary_value"),
    )
    m = c.filter(pl.col("_modelled"))
    if m.height == 0:
        return _empty_result(c, info, customer_dtype)
    count_basis = spend_basis = FITTED
    fallback_reasons: list[str] = []
    try:
        nbd = NBDModel().fit(m, frequency_col="period_frequency", periods_col="n_periods")
    except WinbackFitError as error:
        _fallback_warning("count (period NBD)", error, m.height)
        nbd, count_basis = default_nbd(m), POPULATION_DEFAULT
        fallback_reasons.append(f"count: {error}")
    set_aside: tuple[Any, ...] = ()
    try:
        gg = GammaGammaModel().fit(
            m, frequency_col="spend_frequency", monetary_col="monetary_value"
        )
        set_aside = tuple(m.get_column("customer_id").filter(pl.Series(gg.set_aside_)).to_list())
    except WinbackFitError as error:
        _fallback_warning("spend (Gamma–Gamma)", error, m.height)
        gg, spend_basis = default_gamma_gamma(m, panel.frame, n_complete), POPULATION_DEFAULT
        fallback_reasons.append(f"spend: {error}")
    if count_basis != FITTED or spend_basis != FITTED or set_aside:
        info = dataclasses.replace(
            info,
            count_model=count_basis,
            spend_model=spend_basis,
            model_fallbacks=tuple(fallback_reasons),
            spend_fit_set_aside=set_aside,
        )
    spend_edges = list(info.spend_bin_edges)
    # The chain's rows (read from the panel, which is then let go of) and the BG/NBD's
    # P(alive) read none of the forecast: they run on the pool beside it (the forecast's chunks
    # queue behind them), the same bits as one after the other.
    every_customer = m.height == c.height
    rows = submit(
        lambda: _chain_rows(
            panel,
            m,
            n_complete,
            frequency_buckets,
            spend_edges,
            (max_recency, horizon, discount_rate),
            every_customer,
        )
    )
    ids = m.get_column("customer_id")
    alive = submit(lambda: probability_alive(alive_summary, ids))
    forecast = next_period(m, nbd, gg, frequency_buckets, spend_edges)
    p_alive, bg_nbd, bg_nbd_error = alive.result()
    expected_amount = forecast.expected_amount
    segment_codes = tier_codes(expected_amount, tiers)
    seg_index = np.where(segment_codes < 0, len(tiers), segment_codes)
    n_segments = len(tier_names(tiers))
    next_margin, margin_basis = next_margins(
        m, seg_index, n_segments, n_complete, has_cost=info.has_cost, margin=margin
    )
    expected_cost = expected_amount * (1.0 - next_margin)
    expected_expense, expense_basis = expected_expenses(
        m, expected_amount, seg_index, n_segments, has_expenses=info.has_expenses
    )
    expected_value = expected_amount - expected_cost - expected_expense
    # Markov chain (docs/methods.md#markov).
    n_f, n_m = len(frequency_buckets), len(spend_edges) + 1
    last = m.get_column("last_active").to_numpy()
    recency = np.minimum(n_complete - 1 - last, max_recency)
    f_bin = m.get_column("f_bin").to_numpy().astype(np.int64)
    m_bin = m.get_column("m_bin").to_numpy().astype(np.int64)
    state = ((recency * n_f + f_bin) * n_m + m_bin).astype(np.int64)
    # The chain overwrites the forecast's cells (1M × 21 floats at 1M customers) and lets go of
    # them once read: no name here keeps them.
    cells = [forecast.cells]
    forecast = dataclasses.replace(forecast, cells=np.zeros((0, cells[0].shape[1])))
    chain = build_chain(
        panel=rows.result().pop(),  # the future keeps an empty list: the chain frees the rows
        current_state=state,
        cells=cells.pop(),
        next_margin=next_margin,
        expected_amount=expected_amount,
        expected_expense=expected_expense,
        n_complete=n_complete,
        max_recency=max_recency,
        buckets=frequency_buckets,
        spend_edges=spend_edges,
        kappa=kappa,
        horizon=horizon,
        discount_rate=discount_rate,
        modelled=m,
        overwrite_cells=True,  # forecast.cells is not read after the chain
    )
    if chain.customer_state is not None:
        state = chain.customer_state
    states = chain.states
    P = chain.transition_matrix
    n_cells = n_f * n_m
    p_active_markov = np.asarray(P[:, :n_cells].sum(axis=1)).ravel()[state]
    ev_mean, _ = state_means(state, expected_value, P.shape[0])
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(ev_mean[state] > 0, expected_value / ev_mean[state], 1.0)
    clv = states.get_column("value").to_numpy()[state] * ratio
    clv_inf = states.get_column("value_infinite").to_numpy()[state] * ratio
    if chain.customer_purchases is not None:
        clv, clv_inf = customer_values(
            chain, forecast.expected_mean_amount, expected_amount, expected_value
        )
    labels = states.get_column("label").gather(pl.Series(state))
    tier_values = expected_value if tier_by == "expected_value" else clv
    out = pl.DataFrame(
        {
            "customer_id": m.get_column("customer_id"),
            "expected_frequency": forecast.expected_frequency,
            "p_active_next": forecast.p_active_next,
            "p_alive": p_alive,
            "frequency_mode": forecast.frequency_mode,
            "p_frequency_mode": forecast.p_frequency_mode,
            "p_frequency": forecast.p_frequency,
            "expected_mean_amount": forecast.expected_mean_amount,
            "spend_bin_mode": forecast.spend_bin_mode,
            "p_spend_bin_mode": forecast.p_spend_bin_mode,
            "frequency_upside": forecast.frequency_upside,
            "spend_upside": forecast.spend_upside,
            "seed_upside_amount": forecast.seed_upside_amount,
            "expected_amount": expected_amount,
            "segment": tier_series(segment_codes, tiers),
            "next_margin": next_margin,
            "margin_basis": margin_basis,
            "expected_cost": expected_cost,
            "expected_expense": expected_expense,
            "expense_basis": expense_basis,
            "expected_value": expected_value,
            "negative_value": expected_value < 0,
            "markov_state": labels,
            "p_active_next_markov": p_active_markov,
            "clv": clv,
            "clv_infinite": clv_inf,
            "value_tier": tier_series(tier_codes(tier_values, tiers), tiers),
        },
        schema_overrides={"p_frequency": pl.Array(pl.Float64, PMF_MAX + 1)},
    )
    frame = _assemble(c, out).with_columns(pl.col("p_alive").fill_nan(None))
    if discount_rate <= 0:  # the infinite-horizon value diverges: null (docs/methods.md#clv)
        frame = frame.with_columns(pl.col("clv_infinite").fill_nan(None))
    if bg_nbd_error is not None:
        info = dataclasses.replace(info, bg_nbd_error=bg_nbd_error)
    return ValueResult(frame=frame, nbd=nbd, gamma_gamma=gg, chain=chain, info=info, bg_nbd=bg_nbd)


def _chain_panel(
    panel: pl.DataFrame, m: pl.DataFrame, n_complete: int, *, every_customer: bool
) -> pl.DataFrame:
    """The panel rows the chain reads: all of them when every customer is modelled, else the
    modelled customers' active complete periods (filtered first, so the semi join copies those
    rows rather than the whole panel)."""
    if every_customer:
        return panel
    # Columns first, then rows: an eager filter copies every column of the panel.
    return (
        panel.select("customer_id", "period", "revenue", "occasions", "_mean")
        .filter((pl.col("occasions") > 0) & (pl.col("period") < n_complete))
        .join(m.select("customer_id"), on="customer_id", how="semi")
    )


def _chain_rows(
    panel: PanelHandle,
    m: pl.DataFrame,
    n_complete: int,
    frequency_buckets: list[int],
    spend_edges: list[float],
    chain_args: tuple[int, int, float],
    every_customer: bool,
) -> list[ChainRows]:
    """The chain's rows (:func:`chain_rows`) of the modelled customers ``m`` (with the periodic
    BG/NBD fitted on them, :func:`lapse_fit`, and the rows tallied, :func:`tally_chain_rows`,
    when they are tied to ``m``: the row arrays are then freed here, beside the forecast;
    ``chain_args``: the chain's max_recency, horizon and discount rate), in a list the caller
    empties (a future keeps its result: the chain lets go of the rows as it goes); the panel is
    taken from its handle and let go of once read (no name here holds it)."""
    rows = chain_rows(
        _chain_panel(panel.take(), m, n_complete, every_customer=every_customer),
        n_complete=n_complete,
        buckets=frequency_buckets,
        spend_edges=spend_edges,
        modelled=m,
    )
    if rows.f_bin is None:  # tied to m: the periodic BG/NBD is fitted, the rows tallied here
        rows = tally_chain_rows(
            dataclasses.replace(rows, lapse=lapse_fit(m, rows.sizes)),
            n_complete=n_complete,
            max_recency=chain_args[0],
            buckets=frequency_buckets,
            n_m=len(spend_edges) + 1,
            horizon=chain_args[1],
            discount_rate=chain_args[2],
        )
    return [rows]


def _assemble(c: pl.DataFrame, modelled: pl.DataFrame) -> pl.DataFrame:
    base = c.select(
        "customer_id",
        pl.when(pl.col("_modelled"))
        .then(pl.lit("modelled"))
        .otherwise(pl.lit("not_modelled"))
        .alias("status"),
        pl.when(pl.col("_modelled")).then(None).otherwise(pl.lit(_NOT_MODELLED)).alias("reason"),
        "n_periods",
        pl.col("period_frequency").cast(pl.Int64),
        (pl.col("revenue_to_date") - pl.col("cost_to_date") - pl.col("expense_to_date")).alias(
            "value_to_date"
        ),
    )
    ids = c.get_column("customer_id")
    if modelled.height == c.height and modelled.get_column("customer_id").equals(ids):
        # Every customer modelled, in the same order: the columns side by side (no copy), the
        # frame the left join gives.
        return base.hstack(modelled.drop("customer_id")).select(VALUE_COLUMNS)
    return base.join(modelled, on="customer_id", how="left").select(VALUE_COLUMNS)


def _empty_result(c: pl.DataFrame, info: ValueInfo, customer_dtype: Any) -> ValueResult:
    schema = {
        "customer_id": customer_dtype,
        "expected_frequency": pl.Float64,
        "p_active_next": pl.Float64,
        "p_alive": pl.Float64,
        "frequency_mode": pl.Int64,
        "p_frequency_mode": pl.Float64,
        "p_frequency": pl.Array(pl.Float64, PMF_MAX + 1),
        "expected_mean_amount": pl.Float64,
        "spend_bin_mode": pl.Int64,
        "p_spend_bin_mode": pl.Float64,
        "frequency_upside": pl.Float64,
        "spend_upside": pl.Float64,
        "seed_upside_amount": pl.Float64,
        "expected_amount": pl.Float64,
        "segment": pl.String,
        "next_margin": pl.Float64,
        "margin_basis": pl.String,
        "expected_cost": pl.Float64,
        "expected_expense": pl.Float64,
        "expense_basis": pl.String,
        "expected_value": pl.Float64,
        "negative_value": pl.Boolean,
        "markov_state": pl.String,
        "p_active_next_markov": pl.Float64,
        "clv": pl.Float64,
        "clv_infinite": pl.Float64,
        "value_tier": pl.String,
    }
    c = c.with_columns(pl.col("customer_id").cast(customer_dtype))
    frame = _assemble(c, pl.DataFrame(schema=schema))
    return ValueResult(frame=frame, nbd=None, gamma_gamma=None, chain=None, info=info)
