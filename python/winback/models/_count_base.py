"""Shared shape of the purchase-count models fitted on (frequency, recency, T) summaries."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal, Self

import numpy as np
import polars as pl
from numpy.typing import NDArray

from winback._options import TimeUnit
from winback.models._base import (
    BaseModel,
    Compressed,
    check_horizon,
    check_penalizer,
    finite_output,
    frame_of,
)
from winback.models._summary_data import checked_rft, compressed_rft, rft_arrays

__all__ = ["CountModel"]

FloatArray = NDArray[np.float64]


class CountModel(BaseModel):
    """A model of repeat purchases fitted on a summary with ``frequency`` (repeat occasions x),
    ``recency`` (t_x, last − first occasion) and ``T`` (end of calibration − first occasion), as
    :func:`winback.summary` returns (docs/methods.md#summary). Time is in the summary's unit (weeks
    by default).

    Predictions take a summary frame (``data``); without one they use the frame given to ``fit``.
    Given the ``(frame, info)`` pair of ``winback.summary(..., return_info=True)`` they refuse a
    summary in another unit or resolution than the fit's (docs/methods.md#fitting).
    """

    frequency_col: str
    recency_col: str
    T_col: str
    #: A frame the model builds for itself (no unit to check), while it is being scored.
    _internal_frame: pl.DataFrame | None = None

    def fit(
        self,
        data: Any,
        /,
        *,
        frequency_col: str = "frequency",
        recency_col: str = "recency",
        T_col: str = "T",
        weights_col: str | None = None,
        unit: TimeUnit | None = None,
        resolution: str | timedelta | None = None,
        penalizer: float = 0.0,
        penalize: Literal["natural", "log"] = "natural",
    ) -> Self:
        """Fits by maximum likelihood over the unique (x, t_x, T) tuples (docs/methods.md#fitting).

        ``weights_col`` names a column of customer counts when ``data`` is already compressed.
        ``unit`` and ``resolution`` are the summary's (``winback.summary``'s arguments), saved
        with the model so that predictions on a summary in another unit are refused; a
        ``(frame, info)`` pair from ``winback.summary(..., return_info=True)`` carries them.
        ``penalizer`` c ≥ 0 adds lifetimes' L2 penalty c · Σθ² per customer to the negative
        log-likelihood (docs/methods.md#penalizer), for small or degenerate data; 0 (default) is
        plain maximum likelihood. ``penalize="log"`` squares the log-parameters instead
        (c · Σ(ln θ)², shrinking toward 1 from both sides), which also keeps a parameter from
        running to 0 on degenerate data.
        Raises :class:`~winback.WinbackFitError` when the fit fails, with the reason.
        """
        self.penalizer_ = check_penalizer(penalizer, penalize)
        self.penalize_ = penalize
        self.frequency_col, self.recency_col, self.T_col = frequency_col, recency_col, T_col
        frame = frame_of(self._units_of_fit(data, unit, resolution))
        checked = checked_rft(
            frame,
            model=self.model_name,
            frequency_col=frequency_col,
            recency_col=recency_col,
            T_col=T_col,
        )
        weights = None
        if weights_col is not None:
            weights = frame_of(frame.select(weights_col)).to_series()
            if (weights < 0).any() or weights.is_null().any():
                from winback.errors import WinbackInputError

                raise WinbackInputError(
                    f"{self.model_name}: weights column {weights_col!r} must be ≥ 0"
                )
        compressed = compressed_rft(checked, weights, model=self.model_name)
        self._fit_compressed(compressed)
        self._fit_frame = frame
        return self

    # -- helpers for predictions ----------------------------------------------------------------
    def _rft(self, data: Any | None) -> tuple[FloatArray, FloatArray, FloatArray]:
        frame = self._prediction_frame(data)
        checked = checked_rft(
            frame,
            model=self.model_name,
            frequency_col=getattr(self, "frequency_col", "frequency"),
            recency_col=getattr(self, "recency_col", "recency"),
            T_col=getattr(self, "T_col", "T"),
        )
        return rft_arrays(checked)

    def _settings(self) -> dict[str, Any]:
        return {
            "frequency_col": getattr(self, "frequency_col", "frequency"),
            "recency_col": getattr(self, "recency_col", "recency"),
            "T_col": getattr(self, "T_col", "T"),
        }

    def _restore_settings(self, settings: Any) -> None:
        self.frequency_col = settings.get("frequency_col", "frequency")
        self.recency_col = settings.get("recency_col", "recency")
        self.T_col = settings.get("T_col", "T")

    def _describe_data(self, data: Compressed) -> dict[str, float]:
        w = data.weights
        x, t_x, T = data["frequency"], data["recency"], data["T"]
        n = float(w.sum())
        # Tuples are sorted by frequency: the x = 0 tuples come first.
        first_repeat = int(np.searchsorted(x, 0.0, side="right"))
        return {
            "n_customers": n,
            "n_unique": float(data.n_unique),
            "repeat_customers": float(w[first_repeat:].sum()),
            "mean_frequency": float(np.dot(w, x) / n),
            "mean_recency": float(np.dot(w, t_x) / n),
            "mean_T": float(np.dot(w, T) / n),
            "max_T": float(T.max()),
        }

    def _loglik_each(self, data: Any | None) -> FloatArray:
        x, t_x, T = self._rft(data)
        return self._loglik_rows(self._param_array(), x, t_x, T)

    def _loglik_rows(
        self, params: FloatArray, x: FloatArray, t_x: FloatArray, T: FloatArray
    ) -> FloatArray:  # pragma: no cover - abstract
        """The likelihood kernel's per-row (unweighted) values."""
        raise NotImplementedError

    def _series(self, name: str, values: FloatArray) -> pl.Series:
        return finite_output(self.model_name, name, values)

    # -- the prediction interface ---------------------------------------------------------------
    def probability_alive_at(
        self, x: FloatArray, t_x: FloatArray, T: FloatArray
    ) -> FloatArray:  # pragma: no cover
        raise NotImplementedError

    def expected_purchases_at(
        self,
        t: float,
        x: FloatArray,
        t_x: FloatArray,
        T: FloatArray,
        alive: FloatArray | None = None,
    ) -> FloatArray:  # pragma: no cover
        raise NotImplementedError

    def probability_alive(
        self, data: Any | None = None, *, future_t: float = 0.0
    ) -> pl.Series:  # pragma: no cover
        raise NotImplementedError

    def expected_purchases(
        self, t: float, data: Any | None = None
    ) -> pl.Series:  # pragma: no cover
        raise NotImplementedError

    def probability_of_n_purchases(
        self, t: float, n: int, data: Any | None = None
    ) -> pl.Series:  # pragma: no cover
        raise NotImplementedError

    def expected_purchases_new_customer(
        self, t: float | FloatArray
    ) -> float | pl.Series:  # pragma: no cover
        raise NotImplementedError

    def probability_of_n_purchases_up_to_time(self, t: float, n: int) -> float:
        """P(X(t) = n): the chance that a customer just acquired (first purchase at 0) makes
        exactly n repeat purchases in (0, t] — lifetimes' name and meaning (docs/methods.md#models);
        :meth:`probability_of_n_purchases` at x = t_x = T = 0."""
        names = self._settings()
        frame = pl.DataFrame(
            {
                names["frequency_col"]: [0],
                names["recency_col"]: [0.0],
                names["T_col"]: [0.0],
            }
        )
        self._internal_frame = frame  # no unit to check: nothing in it is in any unit
        try:
            return float(self.probability_of_n_purchases(t, n, frame)[0])
        finally:
            self._internal_frame = None

    def expected_purchases_interval(
        self, t: float, data: Any | None = None, *, level: float = 0.95
    ) -> pl.DataFrame:
        """:meth:`expected_purchases` per customer with its standard error and a ``level``
        interval from the parameters' uncertainty (docs/methods.md#intervals): the delta method,
        Var E ≈ ∇E' Σ ∇E with Σ the fit's ``covariance_`` and ∇E by central differences
        (relative step 1e-5), the interval on the log scale (so it stays positive). This is the
        uncertainty of the expectation, not the spread of the purchase count itself.
        Columns ``expected``, ``std_error``, ``lower``, ``upper``."""
        t = check_horizon(t)
        self._check_fitted()
        x, t_x, T = self._rft(data)
        return self._delta_interval(
            lambda: self.expected_purchases_at(t, x, t_x, T), level, name="expected"
        )

    def conditional_expected_purchases(self, t: float, data: Any | None = None) -> pl.Series:
        """The name lifetimes uses (docs/methods.md#bg-nbd) for :meth:`expected_purchases`."""
        return self.expected_purchases(t, data)
