"""What :func:`winback.value` returns: :class:`ValueResult` (the per-customer frame, the fitted
models, the chain and the run's :class:`ValueInfo`), :class:`MarkovChain` (docs/methods.md#markov),
the frame's columns and the value-tier names (docs/methods.md#value-tiers)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from winback.errors import ValueWarning

if TYPE_CHECKING:
    from scipy import sparse

    from winback.models import BetaGeoModel, GammaGammaModel, NBDModel
    from winback.value.dropout import PeriodicBGNBD

__all__ = [
    "DEFAULT_TIERS",
    "FITTED",
    "NEGATIVE_TIER",
    "PMF_MAX",
    "POPULATION_DEFAULT",
    "REST_TIER",
    "VALUE_COLUMNS",
    "MarkovChain",
    "ValueInfo",
    "ValueResult",
    "ValueWarning",
]

#: Value tiers (docs/methods.md#value-tiers): the top 5 % platinum, next 15 % gold, next 30 %
#: silver, rest bronze.
DEFAULT_TIERS: dict[str, float] = {"platinum": 0.05, "gold": 0.15, "silver": 0.30}
NEGATIVE_TIER = "negative"
REST_TIER = "bronze"
#: How a value run's count and spend models were obtained (``ValueInfo.count_model``,
#: ``spend_model``): fitted by maximum likelihood, or the documented population defaults
#: (docs/methods.md#population-defaults).
FITTED = "fitted"
POPULATION_DEFAULT = "population_default"


#: ``p_frequency`` holds P(X' = j) for j = 0 … PMF_MAX.
PMF_MAX = 10

#: Columns of :attr:`ValueResult.frame`, in order.
VALUE_COLUMNS = (
    "customer_id",
    "status",
    "reason",
    "n_periods",
    "period_frequency",
    "expected_frequency",
    "p_active_next",
    "p_alive",
    "frequency_mode",
    "p_frequency_mode",
    "p_frequency",
    "expected_mean_amount",
    "spend_bin_mode",
    "p_spend_bin_mode",
    "frequency_upside",
    "spend_upside",
    "seed_upside_amount",
    "expected_amount",
    "segment",
    "next_margin",
    "margin_basis",
    "expected_cost",
    "expected_expense",
    "expense_basis",
    "expected_value",
    "value_to_date",
    "negative_value",
    "markov_state",
    "p_active_next_markov",
    "clv",
    "clv_infinite",
    "value_tier",
)


@dataclass(frozen=True)
class MarkovChain:
    """The recency chain of docs/methods.md#markov.

    Attributes
    ----------
    states : one row per state: ``state`` (index), ``label`` ("r|f|m"), ``recency`` (0 … R,
        R meaning ``R+``), ``frequency_bucket``, ``spend_bin``, ``customers`` (currently in it),
        ``transitions`` (observed N_s), ``reward`` R(s), ``value`` V_H(s) and
        ``value_infinite`` V(s).
    transition_matrix : P as a ``scipy.sparse.csr_array`` (rows sum to 1; only reachable
        transitions are stored).
    counts : N(s → s') as a sparse array.
    prior : π₀ as a sparse array.
    kappa : the Dirichlet weight used.
    horizon, discount_rate : of the values.
    lapse : the periodic BG/NBD the model-implied rows are tied to (docs/methods.md#markov);
        None when it could not be fitted and the rows are the period NBD's.
    customer_state : each modelled customer's state index (frame order), or None.
    customer_purchases : each modelled customer's discounted expected occasions over the
        horizon, Σ_t δ^t e(t) with e(t) the periodic BG/NBD's per period (frame order,
        docs/methods.md#clv); None when the chain is the period NBD's.
    customer_purchases_infinite : the same continued beyond the horizon (None as above, or
        when the discount rate is ≤ 0).
    """

    states: pl.DataFrame
    transition_matrix: sparse.csr_array
    counts: sparse.csr_array
    prior: sparse.csr_array
    kappa: float
    horizon: int
    discount_rate: float
    lapse: PeriodicBGNBD | None = None
    customer_state: np.ndarray | None = None
    customer_purchases: np.ndarray | None = None
    customer_purchases_infinite: np.ndarray | None = None

    @property
    def labels(self) -> list[str]:
        """State labels in matrix order."""
        return list(self.states.get_column("label"))

    def transitions(self) -> pl.DataFrame:
        """P in long form: ``from``, ``to`` (labels), ``probability``, ``count``."""
        coo = self.transition_matrix.tocoo()
        labels = np.asarray(self.labels, dtype=object)
        counts = self.counts.tocsr()
        return pl.DataFrame(
            {
                "from": labels[coo.row].tolist(),
                "to": labels[coo.col].tolist(),
                "probability": coo.data,
                "count": np.asarray(counts[coo.row, coo.col]).ravel(),
            }
        )


@dataclass(frozen=True)
class ValueInfo:
    """What a value run used: the cut-off, periods, data sources and rows."""

    as_of: datetime | None
    period: str
    n_complete_periods: int
    next_period_start: datetime | None
    rows_read: int
    rows_rejected: int
    rows_after_as_of: int
    has_cost: bool
    has_expenses: bool
    spend_bin_edges: tuple[float, ...]
    expense_rows_unmatched: int
    rejects: pl.DataFrame = field(repr=False)
    #: Why the BG/NBD behind ``p_alive`` could not be fitted (then ``p_alive`` is null).
    bg_nbd_error: str | None = None
    #: ``"fitted"`` or ``"population_default"`` (docs/methods.md#population-defaults): the basis
    #: of the period NBD (``count_model``) and of the Gamma–Gamma (``spend_model``).
    count_model: str = FITTED
    spend_model: str = FITTED
    #: Why a model fell back to its population defaults (one line per model).
    model_fallbacks: tuple[str, ...] = ()
    #: Customers set aside from the Gamma–Gamma fit as spend outliers (still predicted from the
    #: fitted parameters; docs/methods.md#spend-outliers).
    spend_fit_set_aside: tuple[Any, ...] = ()
    #: Customers of the expense table without transactions (their rows are left out).
    expense_customers_unmatched: int = 0


@dataclass(frozen=True)
class ValueResult:
    """The output of :func:`value`: ``frame`` (one row per customer), the fitted ``nbd`` and
    ``gamma_gamma`` models (None when nothing could be modelled), the Markov ``chain``, the
    run's ``info`` and the ``bg_nbd`` model behind ``p_alive`` (None when it could not be
    fitted; ``info.bg_nbd_error`` says why)."""

    frame: pl.DataFrame
    nbd: NBDModel | None
    gamma_gamma: GammaGammaModel | None
    chain: MarkovChain | None
    info: ValueInfo
    bg_nbd: BetaGeoModel | None = None
    #: The periodic BG/NBD behind the ``dropout_*`` columns (docs/methods.md#periodic-bg-nbd),
    #: fitted when ``forecast`` is not ``"nbd"``; None otherwise.
    dropout: PeriodicBGNBD | None = None
    #: The headline forecast behind ``forecast_amount`` (docs/methods.md#headline-forecast):
    #: ``"nbd"`` or ``"dropout"``, and why (``forecast="auto"`` gives the back-test's figures).
    forecast: str = "nbd"
    forecast_reason: str = "the default forecast (period NBD × Gamma–Gamma)"
    #: ``forecast="auto"``'s back-test per held-out period and method (``period``, ``method``,
    #: ``actual``, ``forecast``, ``total_error``, ``rmse``); None otherwise.
    forecast_evidence: pl.DataFrame | None = None

    @property
    def transition_matrix(self) -> sparse.csr_array | None:
        """P of the chain (sparse; states in ``chain.states`` order)."""
        return None if self.chain is None else self.chain.transition_matrix

    @property
    def state_values(self) -> pl.DataFrame | None:
        """V per state (horizon and infinite) with the state labels."""
        if self.chain is None:
            return None
        return self.chain.states.select("label", "reward", "value", "value_infinite")
