"""The analyst's HTML report (docs/methods.md#outputs): one self-contained file, readable offline.

``winback.report(data, output="report.html")`` scores the data and writes a page with the data
summary, the TrF and S distributions, the migration heatmap, the models' calibration-vs-holdout
plot, the activation list and the parameters used — plus the RFM grid, quadrant scatter and
value-tier Pareto curve when the installed winback provides ``winback.rfm``,
``winback.quadrant`` and ``winback.value``. Charts are Vega-Lite (built with Altair) with the
Vega JavaScript inlined, so the file needs no network.

Sections are registered functions (:func:`register_section`); a section whose capability is
missing, or that raises :class:`SkipSection`, is listed under "Sections not shown" with the
reason. Importing this package is cheap: Altair and vl-convert load when a report is built.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from winback._options import (
    AMOUNT_COL,
    CUSTOMER_COL,
    ENGAGEMENT_TYPES,
    MIN_OCCASIONS,
    ON_INVALID,
    RESOLUTION,
    S_CUTS,
    TIME_COL,
    TRF_CUTS,
    AsOf,
    OnInvalid,
)
from winback.report._registry import (
    Section,
    SectionBody,
    SkipSection,
    TableBlock,
    register_section,
    registered_sections,
    unregister_section,
)
from winback.report._result import Progress, Report

if TYPE_CHECKING:
    import polars as pl

__all__ = [
    "Report",
    "Section",
    "SectionBody",
    "SkipSection",
    "TableBlock",
    "register_section",
    "registered_sections",
    "report",
    "unregister_section",
]


def report(
    data: Any,
    /,
    *,
    output: str | Path | None = None,
    as_of: AsOf | None = None,
    previous_as_of: AsOf | None = None,
    calibration_end: AsOf | None = None,
    models: Sequence[str] = ("bgnbd", "pareto"),
    top_n: int = 25,
    title: str | None = None,
    min_occasions: int = MIN_OCCASIONS,
    resolution: str | timedelta = RESOLUTION,
    trf_cuts: Sequence[float] = TRF_CUTS,
    s_cuts: Sequence[float] = S_CUTS,
    customer_col: str = CUSTOMER_COL,
    time_col: str = TIME_COL,
    amount_col: str | None = AMOUNT_COL,
    on_invalid: OnInvalid = ON_INVALID,
    num_threads: int | None = None,
    progress: Progress | None = None,
    scorecards: pl.DataFrame | None = None,
    events: Any = None,
    engagement_types: Sequence[str] = ENGAGEMENT_TYPES,
    backtest: int | Sequence[AsOf] | None = None,
) -> Report:
    """Build the HTML report of docs/methods.md#outputs for a transaction log.

    Parameters
    ----------
    data
        Transactions, as for :func:`winback.silence` (a frame, Arrow data or file paths).
    output
        Where to write the page (``.html``); default: not written (see ``Report.html``).
    as_of
        The snapshot (default: the latest purchase).
    previous_as_of
        The earlier snapshot of the migration heatmap (default: halfway between the first
        purchase and ``as_of``).
    calibration_end
        End of the models' calibration period; the holdout runs to ``as_of`` (default: halfway
        between the first purchase and ``as_of``).
    models
        Purchase models for the calibration-vs-holdout plot: ``"bgnbd"``, ``"mbgnbd"``,
        ``"pareto"`` (``()`` leaves the section out).
    top_n
        Rows of the activation list.
    title
        Page title (default: "winback report").
    min_occasions, resolution, trf_cuts, s_cuts
        Scoring parameters, as for :func:`winback.silence`.
    customer_col, time_col, amount_col, on_invalid, num_threads
        Input columns and hygiene, as for :func:`winback.silence`; with ``on_invalid="drop"``
        the summary counts the rejected rows.
    progress
        ``progress(step, done, total)``, called before each step (the CLI's progress bar).
    scorecards
        The daily loop's staff scorecards (docs/methods.md#staff-scorecards), e.g.
        ``winback.Pipeline(config).scorecards(day)``: shown as the "Staff scorecards" section
        (left out when not given). ``winback report --loop winback.toml`` passes them.
    events
        An optional events table (or ``PreparedEvents``; docs/methods.md#events): given, the
        report adds the funnels-and-paths section (purchase vs engagement silence, funnel
        conversion per TrF group, the weeks before silence). Read with the default columns
        (``customer_id``, ``ts``, ``event``); prepare it with ``winback.prepare_events`` for
        others.
    engagement_types
        The event types whose silence is compared with purchase silence.
    backtest
        Origins of the back-test section (docs/methods.md#backtest): a number N (the last N
        month ends that leave the horizons inside the data) or month-end dates; default None
        leaves the section out (it refits every model at each origin: seconds per origin).

    Returns
    -------
    Report
        The page and its figures; ``Report.path`` is ``output`` when given.

    Examples
    --------
    >>> import winback
    >>> from winback.datasets import load_cdnow
    >>> page = winback.report(load_cdnow(), models=())  # doctest: +SKIP
    >>> page.figures["customers"]  # doctest: +SKIP
    23570
    """
    from winback.report._build import build_report

    return build_report(
        data,
        output=output,
        as_of=as_of,
        previous_as_of=previous_as_of,
        calibration_end=calibration_end,
        models=models,
        top_n=top_n,
        title=title,
        min_occasions=min_occasions,
        resolution=resolution,
        trf_cuts=trf_cuts,
        s_cuts=s_cuts,
        customer_col=customer_col,
        time_col=time_col,
        amount_col=amount_col,
        on_invalid=on_invalid,
        num_threads=num_threads,
        progress=progress,
        scorecards=scorecards,
        events=events,
        engagement_types=tuple(engagement_types),
        backtest=backtest,
    )
