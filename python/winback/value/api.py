"""Next-period value, cost and expense, the Markov chain and CLV (docs/methods.md#value, #markov).

:func:`value` builds the customer × period panel in the Rust core (docs/methods.md#periods), fits
the period NBD and the Gamma–Gamma spend model on it, forecasts every customer's next period
(count, spend, amount, margin, cost, marketing expense, value), and runs the recency Markov
chain of docs/methods.md#markov for multi-period CLV. It returns a :class:`ValueResult`: the
per-customer frame plus the fitted models and the chain.

Conventions (choices documented in docs/methods.md#value):

- The *next period* is the first period after the last complete one (the period holding
  ``as_of`` when ``as_of`` is inside it). Occasions in the incomplete period are left out of
  modelling (docs/methods.md#periods) but count in ``value_to_date``.
- A customer is modelled when their birth period is complete; customers whose first purchase is
  in the incomplete period appear once with ``status="not_modelled"`` and a ``reason``.
- The *segment* of the fall-backs (margin slope, expense Rate and Floor: docs/methods.md#margin,
  #expense) is the value tier by ``expected_amount`` (``segment`` column): it cannot be the final
  tier, which depends on the margin and the expense being computed.
- Spend models use positive-amount occasions of the modelling periods (after the birth period,
  complete), as ``spend_basis="repeat"`` does in docs/methods.md#gamma-gamma.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any, Literal

import polars as pl

from winback import _io
from winback._options import (
    AMOUNT_COL,
    CUSTOMER_COL,
    FORECAST,
    FORECASTS,
    HORIZON_PERIODS,
    ON_INVALID,
    PERIOD,
    RESOLUTION,
    TIME_COL,
    AsOf,
    OnInvalid,
)
from winback.errors import WinbackConfigError
from winback.summary import check_period, period_edges, summary
from winback.value.panel import (
    PanelHandle,
    customer_aggregates,
    read_value_input,
    release_freed_memory,
    spend_bin_edges,
    value_panel,
)
from winback.value.result import DEFAULT_TIERS, REST_TIER, ValueInfo, ValueResult

__all__ = ["value"]


def _check_args(
    horizon: int,
    discount_rate: float,
    kappa: float | str,
    max_recency: int,
    frequency_buckets: Sequence[int],
    tiers: Mapping[str, float],
    margin: float | None,
) -> None:
    if not isinstance(horizon, int) or horizon < 1:
        raise WinbackConfigError(f"horizon={horizon!r} must be a whole number of periods ≥ 1")
    if not (math.isfinite(discount_rate) and discount_rate > -1.0):
        raise WinbackConfigError(f"discount_rate={discount_rate!r} must be a number > -1")
    if isinstance(kappa, str):
        if kappa != "evidence":
            raise WinbackConfigError(f"kappa={kappa!r} must be 'evidence' or a number > 0")
    elif not (math.isfinite(kappa) and kappa > 0):
        raise WinbackConfigError(f"kappa={kappa!r} must be 'evidence' or a number > 0")
    if not isinstance(max_recency, int) or max_recency < 1:
        raise WinbackConfigError(f"max_recency={max_recency!r} must be a whole number ≥ 1")
    buckets = list(frequency_buckets)
    if not buckets or buckets[0] != 1 or any(b <= a for a, b in itertools.pairwise(buckets)):
        raise WinbackConfigError(
            f"frequency_buckets={buckets!r} must be increasing lower bounds starting at 1, "
            "e.g. [1, 2, 3, 5]"
        )
    shares = list(tiers.values())
    if any(not (0 < s < 1) for s in shares) or sum(shares) >= 1:
        raise WinbackConfigError(
            f"tiers={dict(tiers)!r}: shares must be in (0, 1) and sum to less than 1 (the rest "
            f"is {REST_TIER!r})"
        )
    if margin is not None and not (0.0 <= margin <= 1.0):
        raise WinbackConfigError(f"margin={margin!r} must be between 0 and 1")


def value(
    data: Any,
    *,
    as_of: AsOf | None = None,
    period: str = PERIOD,
    expenses: Any | None = None,
    margin: float | None = None,
    horizon: int = HORIZON_PERIODS,
    discount_rate: float = 0.01,
    kappa: float | Literal["evidence"] = "evidence",
    max_recency: int = 12,
    frequency_buckets: Sequence[int] = (1, 2, 3, 5),
    spend_bins: Sequence[float] | None = None,
    tiers: Mapping[str, float] | None = None,
    tier_by: Literal["expected_value", "clv"] = "expected_value",
    forecast: Literal["nbd", "dropout", "stacked", "auto", "combined"] = FORECAST,
    resolution: str | timedelta = RESOLUTION,
    customer_col: str = CUSTOMER_COL,
    time_col: str = TIME_COL,
    amount_col: str = AMOUNT_COL,
    cost_col: str | None = "cost",
    expense_col: str = "expense",
    order_col: str | None = None,
    tz: str | None = None,
    on_invalid: OnInvalid = ON_INVALID,
) -> ValueResult:
    """Next-period forecasts, margin, cost, expense, value, Markov CLV and tiers
    (docs/methods.md#value, #markov).

    Parameters
    ----------
    data
        Transactions with an amount (and optionally a ``cost``) column; any input
        :func:`winback.silence` accepts.
    as_of
        End of the snapshot: a date means the end of that day; default: the end of the latest
        purchase's day (the same snapshot, periods and values as passing that date). Later rows
        are excluded. One before all the data is refused, and so is a default set by rows dated
        far beyond the rest (docs/methods.md#as-of).
    period
        ``"month"`` (calendar, default), ``"week"``, ``"quarter"`` or ``"Nd"``.
    expenses
        Optional table of relationship-marketing spend: ``customer_id``, ``ts``, ``expense``
        (names as ``customer_col``/``time_col``/``expense_col``). Without it, expense is 0 and
        ``expense_basis`` says ``"no_expense_data"``.
    margin
        Global margin in [0, 1] when there is no cost column; with one, the fall-back for
        customers without a period of positive revenue. Without cost and margin, cost is 0
        (``margin_basis="no_cost_data"``).
    horizon, discount_rate
        H periods and the per-period rate d of the chain's value (δ = 1/(1+d)).
    kappa
        Dirichlet weight of the model-implied rows: ``"evidence"`` (maximise the
        Dirichlet-multinomial evidence) or a number > 0.
    max_recency, frequency_buckets, spend_bins
        The chain's states (docs/methods.md#markov): recency 0 … R−1 and ``R+``; frequency bucket
        lower bounds (of the next period's occasions in the forecast cells, of the active
        periods so far in the chain's states); interior spend-bin edges (default: quintile
        edges of the period means).
    tiers, tier_by
        Value tiers (docs/methods.md#value-tiers) by ``expected_value`` (default) or ``clv``.
    forecast
        The headline next-period forecast (docs/methods.md#headline-forecast): ``"nbd"``
        (default: the frame as ever, ``expected_amount``), ``"dropout"`` (the periodic BG/NBD,
        docs/methods.md#periodic-bg-nbd), ``"stacked"`` (gradient-boosted trees over the
        models' quantities and the customer's rhythm, fitted by rolling origin on these data,
        docs/methods.md#stacked-forecast; needs scikit-learn) or ``"auto"`` (whichever of the
        three forecast the data's own last periods best). Other than ``"nbd"``, the frame
        gains the columns ``last_active_offset``, ``active_periods``, ``dropout_p_alive``,
        ``dropout_p_active_next``, ``dropout_expected_frequency``,
        ``dropout_expected_amount``, ``stacked_expected_amount``, ``stacked_p_active_next``
        and ``forecast_amount`` (the chosen headline); ``ValueResult.forecast`` and
        ``forecast_reason`` say which was chosen and why (also logged on ``winback.value``).
        ``"combined"`` (the mean of the periodic BG/NBD's revenue and a Poisson GLM stacker,
        docs/methods.md#combined-forecast; needs scikit-learn; not among ``"auto"``'s
        candidates) adds ``combined_expected_amount`` after those columns.
    resolution, customer_col, time_col, amount_col, cost_col, expense_col, order_col, tz,
    on_invalid
        As for :func:`winback.summary`.

    Returns
    -------
    ValueResult
        ``frame`` has one row per customer (:data:`VALUE_COLUMNS`), sorted by ``customer_id``.

    Notes
    -----
    Two probabilities of activity sit side by side (docs/methods.md#p-active):

    - ``p_active_next`` = P(X' ≥ 1) = 1 − P(X' = 0): the probability of at least one occasion
      in the next period under the period NBD (docs/methods.md#nbd), which has no dropout — every
      customer keeps buying at their posterior rate;
    - ``p_alive`` = the BG/NBD posterior probability that the customer has not dropped out by
      the end of the last complete period (Fader, Hardie & Lee 2005), fitted on the customers'
      (x repeat occasions, t_x, T) in days (:func:`winback.summary`, ``unit="D"``, up to the
      end of the last complete period). It is a state, not a purchase: a customer can be alive
      and still buy nothing next period. It does not enter ``expected_amount``; null (with
      ``info.bg_nbd_error``) when the BG/NBD cannot be fitted.

    Examples
    --------
    >>> import winback
    >>> from winback.datasets import load_cdnow
    >>> result = winback.value(load_cdnow(), as_of="1998-06-30")
    >>> result.frame.height
    23570
    """
    tiers = dict(DEFAULT_TIERS if tiers is None else tiers)
    _check_args(horizon, discount_rate, kappa, max_recency, frequency_buckets, tiers, margin)
    if forecast not in FORECASTS:
        raise WinbackConfigError(
            f"forecast={forecast!r} must be one of {', '.join(map(repr, FORECASTS))}"
        )
    if tier_by not in ("expected_value", "clv"):
        raise WinbackConfigError(f"tier_by={tier_by!r} must be 'expected_value' or 'clv'")
    check_period(period)
    resolution_us = _io.parse_resolution(resolution)
    prepared = read_value_input(
        data,
        customer_col=customer_col,
        time_col=time_col,
        amount_col=amount_col,
        cost_col=cost_col,
        order_col=order_col,
        tz=tz,
        on_invalid=on_invalid,
    )
    as_of_us = _io.snapshot_end(prepared, as_of)
    first = prepared.frame.select(pl.col("ts").filter(pl.col("ts") <= as_of_us).min()).item()
    start_us = as_of_us if first is None else int(first) - int(first) % resolution_us
    edges = period_edges(period, start_us, as_of_us + 1) or [start_us]
    n_complete = len(edges) - 1
    # The P(alive) summary first: its Rust scratch (≈ 300 MB at 1M customers) is handed back
    # before the panel (≈ 450 MB) is built, so the two never sit side by side.
    alive_summary = None
    if first is not None and n_complete > 0:
        # (x, t_x, T) in days up to the end of the last complete period, for P(alive).
        alive_summary = summary(
            prepared.without_amounts(),  # already read: summary does not read it again
            as_of=_io.micros_to_datetime(edges[-1] - 1),
            unit="D",
            resolution=resolution,
        ).select("customer_id", "frequency", "recency", "T")
        release_freed_memory()  # the Rust summary's per-customer scratch (≈ 300 MB at 1M)
    rows_read, rows_rejected, rejects = prepared.rows_read, prepared.rows_rejected, prepared.rejects
    has_cost = prepared.has_cost
    customer_dtype = pl.String if prepared.frame.schema["customer"] == pl.String else pl.Int64
    # The panel reads the prepared rows (≈ 340 MB at 15M rows) last: handed over in a list
    # emptied in the call, so value_panel frees them once its panels are built (before their
    # cost, expense and mean columns, the spend edges and the aggregates).
    held = [prepared]
    del prepared
    panel, excluded, unmatched, unmatched_customers = value_panel(
        held.pop(),
        expenses,
        edges=edges,
        as_of_us=as_of_us,
        resolution_us=resolution_us,
        margin=margin,
        customer_col=customer_col,
        time_col=time_col,
        expense_col=expense_col,
        tz=tz,
        on_invalid=on_invalid,
    )
    spend_edges = spend_bin_edges(panel, n_complete, spend_bins)
    # In customer_id order already (customer_aggregates checks it): no sorted copy.
    customers = customer_aggregates(panel, n_complete, frequency_buckets, spend_edges)
    info = ValueInfo(
        as_of=_io.micros_to_datetime(as_of_us) if first is not None or as_of else None,
        period=period,
        n_complete_periods=n_complete,
        next_period_start=_io.micros_to_datetime(edges[-1]) if first is not None else None,
        rows_read=rows_read,
        rows_rejected=rows_rejected,
        rows_after_as_of=excluded,
        has_cost=has_cost,
        has_expenses=expenses is not None,
        spend_bin_edges=tuple(spend_edges),
        expense_rows_unmatched=unmatched,
        expense_customers_unmatched=unmatched_customers,
        rejects=rejects,
    )
    from winback.value.engine import fit_and_score  # numba and the models load here

    handle = PanelHandle(panel)
    kept = panel if forecast != "nbd" else None  # the headline forecasts read it again
    del panel  # otherwise the engine frees it once the chain has read it (≈ 480 MB at 1M)
    result = fit_and_score(
        alive_summary=alive_summary,
        panel=handle,
        customers=customers,
        info=info,
        n_complete=n_complete,
        margin=margin,
        horizon=horizon,
        discount_rate=discount_rate,
        kappa=kappa,
        max_recency=max_recency,
        frequency_buckets=list(frequency_buckets),
        tiers=tiers,
        tier_by=tier_by,
        customer_dtype=customer_dtype,
    )
    if kept is None:
        return result
    from winback.value.headline import add_headline

    months = (
        [_io.micros_to_datetime(e).month for e in edges]
        if period == "month" and first is not None
        else None
    )
    return add_headline(result, kept, n_complete, forecast, months)
