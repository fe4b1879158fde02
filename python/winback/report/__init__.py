"""The analyst's HTML report (SPEC §9): one self-contained file, readable offline.

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

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from winback.report._registry import (
    Section,
    SectionBody,
    SkipSection,
    TableBlock,
    register_section,
    registered_sections,
    unregister_section,
)
from winback.silence import AsOf

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

#: ``progress(step, done, total)``: called before each step of the report.
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Report:
    """A built report.

    Attributes
    ----------
    html : the page.
    path : where it was written (``None`` without ``output``).
    figures : the data-summary figures shown in its first table (rows read, rejected and used,
        customers by status, first and last purchase, as_of, total amount).
    sections : keys of the sections shown, in order.
    skipped : key → reason of each section left out.
    parameters : the parameters shown in its last table.
    """

    html: str = field(repr=False)
    path: Path | None
    figures: dict[str, Any]
    sections: list[str]
    skipped: dict[str, str]
    parameters: dict[str, Any] = field(repr=False)

    def save(self, path: str | Path) -> Path:
        """Writes the page to ``path`` (UTF-8) and returns the path."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(self.html, encoding="utf-8")
        return target


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
    min_occasions: int = 2,
    resolution: str | timedelta = "1d",
    trf_cuts: Sequence[float] = (0.4, 0.6, 0.8, 0.95),
    s_cuts: Sequence[float] = (1.0, 2.0),
    customer_col: str = "customer_id",
    time_col: str = "ts",
    amount_col: str | None = "amount",
    on_invalid: Literal["raise", "drop"] = "raise",
    num_threads: int | None = None,
    progress: Progress | None = None,
) -> Report:
    """Build the HTML report of SPEC §9 for a transaction log.

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
    )
