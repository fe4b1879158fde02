"""Builds the report: score once, run each registered section, render the page."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from winback import _io
from winback._options import AsOf, OnInvalid
from winback._version import __version__
from winback.errors import WinbackConfigError, WinbackError
from winback.report._context import MODEL_NAMES, ReportContext, ReportParameters
from winback.report._html import render_page
from winback.report._registry import (
    Section,
    SectionBody,
    SkipSection,
    missing_capabilities,
    registered_sections,
)
from winback.report._result import Progress, Report
from winback.report._sections import summary_figures  # importing the sections registers them
from winback.silence import check_parameters, silence


def _check(models: Sequence[str], top_n: int, output: str | Path | None) -> tuple[str, ...]:
    if isinstance(models, str):
        models = (models,)
    unknown = [m for m in models if m not in MODEL_NAMES]
    if unknown:
        raise WinbackConfigError(
            f"models={unknown[0]!r} is not one of {', '.join(MODEL_NAMES)} (or pass models=())"
        )
    if isinstance(top_n, bool) or not isinstance(top_n, int) or top_n < 1:
        raise WinbackConfigError(f"top_n={top_n!r} must be a positive integer")
    if output is not None and Path(output).suffix.lower() not in (".html", ".htm"):
        raise WinbackConfigError(f"output={str(output)!r} must be an .html file")
    return tuple(dict.fromkeys(models))


def _checked_scorecards(cards: Any) -> Any:
    """``scorecards=`` as given (None or a frame with the scorecards' columns), else a
    :class:`WinbackConfigError` naming what is wrong."""
    import polars as pl

    from winback.report._sections.scorecards import SCORECARD_REQUIRED

    if cards is None:
        return None
    if not isinstance(cards, pl.DataFrame):
        raise WinbackConfigError(
            f"scorecards= must be a Polars DataFrame (Pipeline.scorecards(day)), not "
            f"{type(cards).__name__}"
        )
    missing = [c for c in SCORECARD_REQUIRED if c not in cards.columns]
    if missing:
        raise WinbackConfigError(
            f"scorecards= lacks the column(s) {', '.join(missing)}: pass the frame of "
            "Pipeline.scorecards(day) (docs/methods.md#staff-scorecards)"
        )
    return cards


def _check_backtest(backtest: int | Sequence[AsOf] | None) -> int | tuple[AsOf, ...] | None:
    """The back-test section's origins (docs/methods.md#backtest): None, N ≥ 1 or dates."""
    if backtest is None:
        return None
    if isinstance(backtest, bool) or (isinstance(backtest, int) and backtest < 1):
        raise WinbackConfigError(
            f"backtest={backtest!r} must be a number of origins ≥ 1, month-end dates or None"
        )
    if isinstance(backtest, int):
        return backtest
    if isinstance(backtest, str):
        return (backtest,)
    return tuple(backtest)


def build_report(
    data: Any,
    *,
    output: str | Path | None,
    as_of: AsOf | None,
    previous_as_of: AsOf | None,
    calibration_end: AsOf | None,
    models: Sequence[str],
    top_n: int,
    title: str | None,
    min_occasions: int,
    resolution: str | timedelta,
    trf_cuts: Sequence[float],
    s_cuts: Sequence[float],
    customer_col: str,
    time_col: str,
    amount_col: str | None,
    on_invalid: OnInvalid,
    num_threads: int | None,
    progress: Progress | None,
    scorecards: Any = None,
    events: Any = None,
    engagement_types: tuple[str, ...] = (),
    backtest: int | Sequence[AsOf] | None = None,
) -> Report:
    model_names = _check(models, top_n, output)
    origins = _check_backtest(backtest)
    check_parameters(resolution, min_occasions, trf_cuts, s_cuts, num_threads)
    params = ReportParameters(
        as_of=as_of,
        previous_as_of=previous_as_of,
        calibration_end=calibration_end,
        models=model_names,
        top_n=top_n,
        min_occasions=min_occasions,
        resolution=resolution,
        trf_cuts=tuple(trf_cuts),
        s_cuts=tuple(s_cuts),
        customer_col=customer_col,
        time_col=time_col,
        amount_col=amount_col,
        on_invalid=on_invalid,
        num_threads=num_threads,
        scorecards=_checked_scorecards(scorecards),
        events=events,
        engagement_types=engagement_types,
        backtest=origins,
    )
    todo = registered_sections()
    total = len(todo) + 2

    def step(label: str, done: int) -> None:
        if progress is not None:
            progress(label, done, total)

    step("scoring", 0)
    # The one read of the input (docs/architecture.md): every section gets the prepared rows.
    frame = _io.prepare(
        data,
        customer_col=customer_col,
        time_col=time_col,
        amount_col=amount_col,
        on_invalid=on_invalid,
    )
    scores, info = silence(
        frame,
        as_of=as_of,
        resolution=resolution,
        min_occasions=min_occasions,
        trf_cuts=trf_cuts,
        s_cuts=s_cuts,
        customer_col=customer_col,
        time_col=time_col,
        amount_col=amount_col,
        on_invalid=on_invalid,
        num_threads=num_threads,
        return_info=True,
    )
    if info.rows_used == 0:
        raise WinbackConfigError(
            "no transactions at or before as_of: nothing to report (check as_of and the input)"
        )
    ctx = ReportContext(frame, params, scores, info)
    shown: list[tuple[Section, SectionBody]] = []
    skipped: dict[str, str] = {}
    for done, section in enumerate(todo, start=1):
        step(section.title, done)
        missing = missing_capabilities(section)
        if missing:
            names = ", ".join(f"winback.{name}" for name in missing)
            skipped[section.key] = f"needs {names}, which this version of winback does not have"
            continue
        try:
            shown.append((section, section.build(ctx)))
        except SkipSection as exc:
            skipped[section.key] = str(exc)
        except Exception as exc:
            # A capability still being built may not match what the section expects yet; a
            # built-in section's own failure on good data is a bug and propagates.
            if not section.requires and not isinstance(exc, WinbackError):
                raise
            reason = str(exc) if isinstance(exc, WinbackError) else f"{type(exc).__name__}: {exc}"
            skipped[section.key] = f"failed: {reason}"
    step("writing the page", total - 1)
    figures = summary_figures(ctx)
    page = render_page(
        title=title or "winback report",
        subtitle=(
            f"{figures['customers']:,} customers, {figures['rows_used']:,} transactions, "
            f"as of {figures['as_of']}"
        ),
        sections=shown,
        skipped=skipped,
        titles={s.key: s.title for s in todo},
        footer=(
            f"Made by winback {__version__} on "
            f"{datetime.now().isoformat(sep=' ', timespec='seconds')}. Charts: Vega-Lite "
            "specs, Vega JavaScript inlined: no network needed."
        ),
    )
    result = Report(
        html=page,
        path=None,
        figures=figures,
        sections=[section.key for section, _ in shown],
        skipped=skipped,
        parameters=ctx.parameters_used(),
    )
    if output is not None:
        path = result.save(output)
        result = Report(page, path, figures, result.sections, skipped, result.parameters)
    return result
