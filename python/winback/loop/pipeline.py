"""The daily win-back loop (docs/loop.md): :class:`Pipeline` runs one day — score, select,
remember — with its state in a database.

A run for date D (docs/loop.md#a-daily-run):

1. scores the transactions up to the end of D with :func:`winback.silence` (and
   :func:`winback.value` when ``[value] enabled``), and builds the day's selection with
   :func:`winback.campaign.campaign` under the active campaign's id;
2. in one database transaction: brings the schema up to date, starts a campaign when none is
   running on D, adds the customers who are selected but not yet targets of the campaign
   (**new targets**; their arm is the campaign's stable hash, their staff the one dealt on their
   first day, both kept for the campaign's life), except those contacted within the
   **cool-down**; recomputes every target's status and **next contact** from the contacts
   recorded so far (the cadence after the last contact, up to ``max_contacts``); stores every
   customer's snapshot and the run;
3. writes the day's files (``targets-D.csv``, ``due-D.csv``, ``entrants-D.csv``) to temporary
   names inside the transaction and renames them once it has committed.

Re-running D (the latest run) first removes what D's run added, then runs again: the same state
and the same files. A run for a date before the latest run is refused.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
import polars.selectors as cs

from winback._io.prepared import PreparedTransactions, prepare
from winback._options import PRIORITY_WEIGHTS
from winback._version import __version__
from winback.campaign import campaign
from winback.errors import WinbackConfigError, WinbackInputError
from winback.evaluation import evaluate
from winback.lapse import lapse
from winback.loop.config import LoopConfig, load_config, parse_config
from winback.loop.crm import ImportResult, import_crm, read_crm
from winback.recommend import products_as_text
from winback.silence import silence
from winback.value.api import value

if TYPE_CHECKING:
    import sqlalchemy as sa

__all__ = ["Pipeline", "RunResult", "checkpoint", "require_sqlalchemy"]

#: Columns of ``targets-D.csv`` (then ``recommended_products``, the product ids joined by ``|``,
#: with ``[recommend] enabled = true``; docs/methods.md#recommendations).
TARGET_FILE_COLUMNS = (
    "campaign_id",
    "customer_id",
    "arm",
    "contact",
    "staff",
    "strategy",
    "segment",
    "entered_on",
    "next_contact",
    "contacts_made",
    "status",
    "new_target",
)
#: Columns of ``evaluations-D.csv`` (and of the ``evaluations`` table).
EVALUATION_FILE_COLUMNS = (
    "campaign_id",
    "evaluated_on",
    "segment",
    "window_days",
    "treated",
    "control",
    "rate_treatment",
    "rate_control",
    "uplift",
    "uplift_low",
    "uplift_high",
)
#: Columns of ``due-D.csv``: the contacts to make on D (overdue ones carried).
DUE_FILE_COLUMNS = (
    "campaign_id",
    "customer_id",
    "staff",
    "strategy",
    "segment",
    "next_contact",
    "overdue_days",
    "contacts_made",
)


def require_sqlalchemy() -> None:
    """The state database needs SQLAlchemy, an optional dependency: a clear error without it."""
    import importlib.util

    if importlib.util.find_spec("sqlalchemy") is None:
        raise WinbackConfigError(
            "the daily loop keeps its state with SQLAlchemy, which is not installed: "
            "pip install 'winback[loop]'"
        )


def checkpoint(name: str) -> None:
    """A named point of a run (``locked``, ``migrated``, ``campaign``, ``targets``,
    ``snapshots``, ``evaluations``, ``files``, ``commit``, ``committed``): does nothing.

    A private seam for the crash tests (docs/loop.md#a-killed-run): they replace this function
    of the module — in their own process, or in a child started through
    ``tests/loop/killed_run.py`` — to fail or SIGKILL a run at that point. Nothing in winback
    reads the environment or any setting to trigger it."""
    del name


@dataclass(frozen=True)
class RunResult:
    """What one daily run did.

    Attributes
    ----------
    run_date : the day D.
    campaign_id : the campaign running on D.
    rerun : D had been run before; its state was replaced.
    customers : customers scored.
    selected : customers in D's selection (both arms).
    entrants : customer ids (text) in D's selection that were not in the previous run's.
    new_targets : customers who became targets of the campaign on D.
    cooled_down : selected customers not targeted because of a contact within the cool-down.
    due : the contact targets due on D (``due-D.csv``).
    capacity_cut : selected customers left off by the staff capacity (0 without a capacity).
    files : the day's files.
    evaluations : the campaigns evaluated on D (their windows ended), one row per campaign and
        segment (``"all"`` first): :data:`EVALUATION_FILE_COLUMNS`; empty on most days.
    outbox : the day's messages (``outbox-D.csv``, and ``outbox-D.jsonl`` as JSON lines) when
        ``[messages]`` names templates, else None.
    unrendered : due contacts whose strategy has no template (nor a ``default`` one).
    scorecards : with ``[staff] names``, the staff scorecards to D (``scorecards-D.csv``,
        :func:`winback.loop.scorecards.scorecards`), else None.
    """

    run_date: date
    campaign_id: str
    rerun: bool
    customers: int
    selected: int
    entrants: tuple[str, ...]
    new_targets: int
    cooled_down: int
    due: pl.DataFrame
    capacity_cut: int
    files: tuple[Path, ...]
    evaluations: pl.DataFrame
    outbox: pl.DataFrame | None = None
    unrendered: int = 0
    scorecards: pl.DataFrame | None = None


def _day(as_of: date | datetime | str | None) -> date:
    if as_of is None:
        return date.today()
    if isinstance(as_of, datetime):
        return as_of.date()
    if isinstance(as_of, date):
        return as_of
    try:
        return date.fromisoformat(str(as_of).strip())
    except ValueError:
        raise WinbackConfigError(
            f"as_of={as_of!r} is not an ISO date (YYYY-MM-DD): a run is for one day"
        ) from None


class Pipeline:
    """The daily win-back loop over a validated configuration (docs/loop.md).

    Parameters
    ----------
    config
        A :class:`~winback.loop.config.LoopConfig`, a path to a TOML config, or the parsed TOML
        tables as a dict (relative paths from the working directory).

    Examples
    --------
    >>> from winback.loop import Pipeline
    >>> Pipeline({"source": {"paths": ["sales.csv"]}, "value": {"enable": True}})
    Traceback (most recent call last):
    winback.errors.WinbackConfigError: config key value.enable: unknown key ...
    """

    def __init__(self, config: LoopConfig | str | os.PathLike[str] | Mapping[str, Any]):
        if isinstance(config, LoopConfig):
            self.config = config
        elif isinstance(config, Mapping):
            self.config = parse_config(config, base=Path.cwd())
        else:
            self.config = load_config(config)

    @classmethod
    def from_toml(cls, path: str | os.PathLike[str]) -> Pipeline:
        """The pipeline of a config file."""
        return cls(load_config(path))

    # ---------------------------------------------------------------------------------------
    # scoring (no state)

    def prepare(self) -> PreparedTransactions:
        """The config's transactions, read and checked (:func:`winback.prepare`)."""
        cfg = self.config
        for source in cfg.sources:
            plain = "://" not in source and not any(c in source for c in "*?[")
            if plain and not Path(source).exists():
                raise WinbackConfigError(
                    f"config key source.paths: {source!r} does not exist (relative paths are "
                    "read from the config file's folder)"
                )
        return prepare(
            list(cfg.sources),
            customer_col=cfg.customer_col,
            time_col=cfg.time_col,
            amount_col=cfg.amount_col,
            tz=cfg.tz,
            on_invalid=cfg.on_invalid,  # type: ignore[arg-type]
        )

    def score(self, day: date, prepared: PreparedTransactions | None = None) -> pl.DataFrame:
        """The scored table for D: silence (and value) up to the end of D; ids as read."""
        cfg = self.config
        if prepared is None:
            prepared = self.prepare()
        scored = silence(
            prepared,
            as_of=day,
            resolution=cfg.resolution,
            min_occasions=cfg.min_occasions,
            trf_cuts=cfg.trf_cuts,
            s_cuts=cfg.s_cuts,
        )
        if cfg.value:
            result = value(
                prepared, as_of=day, period=cfg.period, margin=cfg.margin, horizon=cfg.horizon
            )
            columns = ["customer_id", "expected_value", "clv", "p_alive", "value_tier"]
            scored = scored.join(result.frame.select(columns), on="customer_id", how="left")
        if _reads_p_lapse(cfg):
            # The lapse model is fitted on D's own history (docs/methods.md#p-lapse); its
            # silence columns equal the ones above, so only p_lapse is taken.
            lapsed = lapse(
                prepared,
                as_of=day,
                resolution=cfg.resolution,
                min_occasions=cfg.min_occasions,
                trf_cuts=cfg.trf_cuts,
                s_cuts=cfg.s_cuts,
            )
            scored = scored.join(
                lapsed.select("customer_id", "p_lapse"), on="customer_id", how="left"
            )
        return scored

    def _select(self, scored: pl.DataFrame, campaign_id: str, day: date) -> pl.DataFrame:
        """D's whole selection (both arms, in priority order) under the campaign's id; the
        capacity is applied to the new targets only (:func:`_within_capacity`)."""
        cfg = self.config
        if cfg.causes is not None:
            scored = _with_causes(scored, _read_causes(cfg.causes))
        if cfg.business_scores is not None and cfg.business_score_col is not None:
            scored = _with_business_scores(scored, cfg.business_scores, cfg.business_score_col)
        return campaign(
            scored,
            campaign_id=campaign_id,
            rule=cfg.rules,
            strategy_map=cfg.strategy_map,
            staff=list(cfg.staff) if cfg.staff else None,
            cadence=cfg.cadence or None,
            holdout=cfg.holdout,
            start=day,
            thresholds=cfg.thresholds or None,
            priority=cfg.priority,  # type: ignore[arg-type]
            priority_weights=cfg.priority_weights,
            business_score_col=cfg.business_score_col,
        )

    # ---------------------------------------------------------------------------------------
    # the run

    def run(
        self,
        as_of: date | datetime | str | None = None,
        *,
        guard: Callable[[pl.DataFrame], pl.DataFrame] | None = None,
    ) -> RunResult:
        """Runs the loop for the day ``as_of`` (default: today); see the module documentation.
        ``guard`` is applied to every frame before it is written as CSV (the CLI passes its
        formula guard, docs/methods.md#outputs).

        Raises
        ------
        WinbackConfigError
            A date before the latest run, a database of a newer winback, a bad URL.
        WinbackInputError
            Bad transactions (as :func:`winback.silence`).
        """
        require_sqlalchemy()
        import winback.loop.schema as schema

        day = _day(as_of)
        cfg = self.config
        with schema.engine_for(cfg.database_url, cfg.lock_wait_seconds) as engine:
            # refuse early (and cheaply) a day before the latest run; re-checked in the run
            with engine.connect() as conn:
                if schema.check_version(conn, cfg.database_url) > 0:
                    _refuse_past(conn, day)
                conn.rollback()
            templates = customers = None
            if cfg.templates is not None:
                from winback.loop.messages import load_templates

                templates = load_templates(cfg.templates)
                customers = _read_customers(cfg.customers) if cfg.customers else None
            prepared = self.prepare()
            scored = self.score(day, prepared)
            staged: list[tuple[Path, Path]] = []
            try:
                with engine.begin() as conn:
                    result = self._run_in(
                        conn, prepared, scored, day, staged, (templates, customers), guard
                    )
                    checkpoint("commit")
            except BaseException:
                for temp, _ in staged:
                    temp.unlink(missing_ok=True)
                raise
            checkpoint("committed")  # the state is written; the day's files not yet renamed
            for temp, final in staged:
                os.replace(temp, final)
            return result

    def _run_in(
        self,
        conn: sa.Connection,
        prepared: PreparedTransactions,
        scored: pl.DataFrame,
        day: date,
        staged: list[tuple[Path, Path]],
        messages: tuple[Any, pl.DataFrame | None] = (None, None),
        guard: Callable[[pl.DataFrame], pl.DataFrame] | None = None,
    ) -> RunResult:
        import sqlalchemy as sa

        import winback.loop.schema as schema

        cfg = self.config
        schema.lock(conn, cfg.lock_wait_seconds)
        checkpoint("locked")
        schema.migrate(conn, cfg.database_url)
        checkpoint("migrated")
        rerun = _refuse_past(conn, day)
        if rerun:
            _undo(conn, day)
        previous = conn.execute(
            sa.select(sa.func.max(schema.runs.c.run_date)).where(schema.runs.c.run_date < day)
        ).scalar()
        campaign_id, start = _campaign_for(conn, cfg, day)
        checkpoint("campaign")

        selection = self._select(scored, campaign_id, day)
        sel = selection.with_columns(
            pl.col("customer_id").cast(pl.String), cs.enum().cast(pl.String)
        )
        selected_ids = set(sel.get_column("customer_id").to_list())
        existing = {
            row.customer_id: row
            for row in conn.execute(
                sa.select(schema.targets).where(schema.targets.c.campaign_id == campaign_id)
            )
        }
        recent: set[str] = set()
        if cfg.cool_down_days > 0:
            since = day - timedelta(days=cfg.cool_down_days)
            recent = {
                r[0]
                for r in conn.execute(
                    sa.select(schema.contacts.c.customer_id)
                    .where(schema.contacts.c.contact_date > since)
                    .where(schema.contacts.c.contact_date <= day)
                    .distinct()
                )
            }
        fresh = sel.filter(~pl.col("customer_id").is_in(list(existing)))
        cooling = fresh.filter(pl.col("customer_id").is_in(list(recent)))
        fresh = fresh.filter(~pl.col("customer_id").is_in(list(recent)))
        # the existing targets' statuses first: the capacity counts the open ones; once more
        # below, so the new targets' contacts made (a contact on D itself) are counted too
        _update_targets(conn, cfg, campaign_id, start, day, selected_ids)
        if cfg.staff is not None and cfg.capacity is not None:
            kept = _within_capacity(conn, cfg, campaign_id, fresh)
            capacity_cut = fresh.height - kept.height
            fresh = kept
        else:
            capacity_cut = 0
        new_rows = [
            {
                "campaign_id": campaign_id,
                "customer_id": row["customer_id"],
                "arm": row["arm"],
                "contact": bool(row["contact"]),
                "staff": row["staff"],
                "strategy": row["strategy"],
                "segment": row["segment"],
                "entered_on": day,
                "interval_days": (row["next_contact"] - day).days if row["contact"] else None,
                "next_contact": row["next_contact"],
                "contacts_made": 0,
                "status": "active",
            }
            for row in fresh.iter_rows(named=True)
        ]
        if new_rows:
            conn.execute(schema.targets.insert(), new_rows)
        checkpoint("targets")
        _update_targets(conn, cfg, campaign_id, start, day, selected_ids)

        prev_selected: set[str] = set()
        if previous is not None:
            prev_selected = {
                r[0]
                for r in conn.execute(
                    sa.select(schema.snapshots.c.customer_id)
                    .where(schema.snapshots.c.run_date == previous)
                    .where(schema.snapshots.c.selected)
                )
            }
        entrants = tuple(sorted(selected_ids - prev_selected))
        id_type = "int" if scored.schema["customer_id"].is_integer() else "str"
        _write_snapshots(conn, scored, sel, day)
        checkpoint("snapshots")
        evaluations = _evaluate_ended(conn, cfg, day, prepared)
        checkpoint("evaluations")

        targets_frame = _targets_frame(conn, campaign_id, day)
        due = (
            targets_frame.filter(
                pl.col("contact")
                & (pl.col("status") == "active")
                & pl.col("next_contact").is_not_null()
                & (pl.col("next_contact") <= day)
            )
            .with_columns(
                (pl.lit(day) - pl.col("next_contact")).dt.total_days().alias("overdue_days")
            )
            .sort("staff", "next_contact", "customer_id", nulls_last=True)
            .select(DUE_FILE_COLUMNS)
        )
        conn.execute(
            schema.runs.insert().values(
                run_date=day,
                campaign_id=campaign_id,
                id_type=id_type,
                customers=scored.height,
                selected=len(selected_ids),
                entrants=len(entrants),
                new_targets=len(new_rows),
                cooled_down=cooling.height,
                due=due.height,
                config_fingerprint=cfg.fingerprint(),
                winback_version=__version__,
            )
        )
        entrant_frame = (
            sel.filter(pl.col("customer_id").is_in(list(entrants)))
            .select("customer_id", "segment", "rank_ratio_group", "silence_score", "recency_days")
            .sort("customer_id")
        )
        active = targets_frame.filter(pl.col("status") == "active").select(TARGET_FILE_COLUMNS)
        recs = None
        if cfg.recommend:
            # once for every active target (the due contacts are among them): the target list
            # carries them, as text in the CSV, and the messages name them
            ids = scored.get_column("customer_id")
            recs = _recommendations_for(
                cfg,
                ids.filter(ids.cast(pl.String).is_in(active.get_column("customer_id").implode())),
            )
            active = products_as_text(
                active.join(recs, on="customer_id", how="left", maintain_order="left")
            )
        day_files = {"targets": active, "due": due, "entrants": entrant_frame}
        if evaluations.height:
            day_files["evaluations"] = evaluations
        outbox, unrendered = None, 0
        templates, customers = messages
        if templates is not None:
            from winback.loop.messages import render_outbox

            value_col = next((c for c in ("clv", "expected_value") if c in scored.columns), None)
            facts = scored.select(
                pl.col("customer_id").cast(pl.String),
                pl.col("recency_days").cast(pl.Float64),
                pl.col("silence_score").cast(pl.Float64),
                (pl.col(value_col) if value_col else pl.lit(None)).cast(pl.Float64).alias("value"),
                (pl.col("value_tier") if "value_tier" in scored.columns else pl.lit(None))
                .cast(pl.String)
                .alias("value_tier"),
            ).with_columns(pl.col(pl.Float64).fill_nan(None))
            if recs is not None:
                facts = facts.join(recs, on="customer_id", how="left")
            outbox, unrendered = render_outbox(
                templates,
                due.join(facts, on="customer_id", how="left"),
                day=day,
                language=cfg.language,
                offers=cfg.offers,
                customers=customers,
            )
            day_files["outbox"] = outbox
            day_files["outbox.jsonl"] = outbox  # one JSON object a line, for a mailer or gateway
        cards = None
        if cfg.staff is not None:
            cards = _scorecards_in(conn, cfg, prepared, day)
            day_files["scorecards"] = cards
        if guard is not None:
            day_files = {name: guard(frame) for name, frame in day_files.items()}
        files = _stage_files(Path(cfg.outputs), day, day_files, staged)
        checkpoint("files")
        return RunResult(
            run_date=day,
            campaign_id=campaign_id,
            rerun=rerun,
            customers=scored.height,
            selected=len(selected_ids),
            entrants=entrants,
            new_targets=len(new_rows),
            cooled_down=cooling.height,
            due=due,
            capacity_cut=capacity_cut,
            files=files,
            evaluations=evaluations,
            outbox=outbox,
            unrendered=unrendered,
            scorecards=cards,
        )

    # ---------------------------------------------------------------------------------------
    # reading and feeding the state

    def record_contacts(self, contacts: pl.DataFrame | str | os.PathLike[str]) -> int:
        """Adds contacts made to the state (what the cool-down and the follow-ups read), all or
        none.

        ``contacts`` — a Polars frame or the CRM's CSV file (UTF-8, a header row) — has
        ``customer_id`` and ``contact_date`` (``YYYY-MM-DD``), optionally ``campaign_id``,
        ``staff``, ``channel``; other columns are ignored. Returns the rows added. A command
        for it is still to come (docs/loop.md#what-is-not-built-yet).
        """
        require_sqlalchemy()
        import winback.loop.schema as schema

        if isinstance(contacts, str | os.PathLike):
            contacts = _read_contacts_csv(Path(contacts))
        if not isinstance(contacts, pl.DataFrame):
            raise WinbackConfigError("contacts must be a polars DataFrame or a CSV file")
        missing = [c for c in ("customer_id", "contact_date") if c not in contacts.columns]
        if missing:
            raise WinbackInputError(f"the contacts have no {missing[0]!r} column")
        dates = pl.col("contact_date")
        if contacts.schema["contact_date"] == pl.String:
            dates = dates.str.strip_chars().str.to_date("%Y-%m-%d", strict=False)
        elif contacts.schema["contact_date"] not in (pl.Date, pl.Datetime):
            raise WinbackInputError(
                f"contact_date has type {contacts.schema['contact_date']}; use dates or "
                "YYYY-MM-DD text"
            )
        keep = ("customer_id", "contact_date", "campaign_id", "staff", "channel")
        frame = contacts.select(
            [
                dates.cast(pl.Date) if c == "contact_date" else pl.col(c).cast(pl.String)
                for c in keep
                if c in contacts.columns
            ]
        )
        bad = frame.with_row_index("row", offset=1).filter(
            pl.col("customer_id").is_null() | pl.col("contact_date").is_null()
        )
        if bad.height:
            rows_text = ", ".join(str(r) for r in bad.get_column("row").head(5).to_list())
            raise WinbackInputError(
                f"{bad.height} contact rows have no customer id or no valid contact_date "
                f"(YYYY-MM-DD), e.g. rows {rows_text}"
            )
        rows = frame.to_dicts()
        cfg = self.config
        wait = cfg.lock_wait_seconds
        with schema.engine_for(cfg.database_url, wait) as engine, engine.begin() as conn:
            schema.lock(conn, wait)
            schema.migrate(conn, cfg.database_url)
            if rows:
                conn.execute(schema.contacts.insert(), rows)
        return len(rows)

    def import_contacts(self, source: pl.DataFrame | str | os.PathLike[str]) -> ImportResult:
        """Adds the CRM's contacts and their outcomes to the state, once
        (docs/loop.md#contacts-and-outcomes-from-the-crm): every row is checked first (a bad
        row is a :class:`~winback.errors.WinbackInputError` naming it, and nothing is added);
        rows the state already holds are skipped, so importing a file twice adds it once."""
        require_sqlalchemy()
        import winback.loop.schema as schema

        frame = read_crm(source)
        url, wait = self.config.database_url, self.config.lock_wait_seconds
        with schema.engine_for(url, wait) as engine, engine.begin() as conn:
            schema.lock(conn, wait)
            schema.migrate(conn, url)
            return import_crm(conn, frame, self.config.name)

    def scorecards(self, as_of: date | datetime | str | None = None) -> pl.DataFrame:
        """The staff scorecards up to ``as_of`` (default: today) from the state and the
        transactions (docs/methods.md#staff-scorecards): one row per campaign and staff member,
        :data:`~winback.loop.scorecards.SCORECARD_COLUMNS`. The same frame a run for that day
        writes as ``scorecards-D.csv``."""
        require_sqlalchemy()
        import winback.loop.schema as schema

        day = _day(as_of)
        url, wait = self.config.database_url, self.config.lock_wait_seconds
        prepared = self.prepare()
        with schema.engine_for(url, wait) as engine, engine.connect() as conn:
            if schema.check_version(conn, url) == 0:
                from winback.loop.scorecards import SCORECARD_SCHEMA

                return pl.DataFrame(schema=SCORECARD_SCHEMA)
            return _scorecards_in(conn, self.config, prepared, day)

    def table(self, name: str) -> pl.DataFrame:
        """A state table as a Polars frame (``runs``, ``snapshots``, ``campaigns``,
        ``targets``, ``contacts``, ``outcomes``, ``evaluations``, ``schema_version``)."""
        require_sqlalchemy()
        import sqlalchemy as sa

        import winback.loop.schema as schema

        tables = schema.metadata.tables
        if name not in tables:
            raise WinbackConfigError(f"no state table {name!r} (tables: {', '.join(tables)})")
        table = tables[name]
        url, wait = self.config.database_url, self.config.lock_wait_seconds
        with schema.engine_for(url, wait) as engine, engine.connect() as conn:
            if schema.check_version(conn, self.config.database_url) == 0:
                rows: list[Any] = []
            else:
                order = [c for c in table.primary_key.columns] or list(table.columns)
                rows = [tuple(r) for r in conn.execute(sa.select(table).order_by(*order))]
        types = {int: pl.Int64, float: pl.Float64, bool: pl.Boolean, str: pl.String, date: pl.Date}
        columns = {c.name: types[c.type.python_type] for c in table.columns}
        return pl.DataFrame(rows, schema=columns, orient="row")


def _read_contacts_csv(path: Path) -> pl.DataFrame:
    """The CRM's contacts CSV, every column as text (ids keep their leading zeros)."""
    try:
        return pl.read_csv(path, infer_schema=False)
    except FileNotFoundError:
        raise WinbackConfigError(f"contacts file {str(path)!r} does not exist") from None
    except (pl.exceptions.PolarsError, OSError, UnicodeDecodeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WinbackInputError(
            f"contacts file {str(path)!r} cannot be read as CSV: {first}"
        ) from None


def _read_customers(path: str) -> pl.DataFrame:
    """The customers file of ``[messages] customers``: every column as text, ``customer_id``
    once per customer."""
    return _read_customers_like(path, "messages.customers", "customers")


def _read_customers_like(path: str, key: str, what: str) -> pl.DataFrame:
    """A CSV keyed by ``customer_id``: every column as text, each customer once."""
    try:
        frame = pl.read_csv(path, infer_schema=False)
    except FileNotFoundError:
        raise WinbackConfigError(f"config key {key}: {path!r} does not exist") from None
    except (pl.exceptions.PolarsError, OSError, UnicodeDecodeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WinbackInputError(f"{what} file {path!r} cannot be read as CSV: {first}") from None
    if "customer_id" not in frame.columns:
        raise WinbackInputError(
            f"{what} file {path!r} has no 'customer_id' column (columns: "
            f"{', '.join(frame.columns)})"
        )
    twice = frame.filter(pl.col("customer_id").is_duplicated())
    if twice.height:
        raise WinbackInputError(
            f"{what} file {path!r} lists customer {twice['customer_id'][0]!r} twice"
        )
    return frame


def _read_causes(path: str) -> pl.DataFrame:
    """The causes file of ``[campaign] causes``: ``customer_id`` and ``cause`` as text, each
    customer once (docs/methods.md#cause-matrix)."""
    frame = _read_customers_like(path, "campaign.causes", "causes")
    if "cause" not in frame.columns:
        raise WinbackInputError(
            f"causes file {path!r} has no 'cause' column (columns: {', '.join(frame.columns)})"
        )
    return frame.select("customer_id", pl.col("cause").str.strip_chars())


def _with_causes(scored: pl.DataFrame, causes: pl.DataFrame) -> pl.DataFrame:
    """The scored table with the ``cause`` column (null for a customer the file does not list)."""
    key = pl.col("customer_id").cast(pl.String).alias("__key")
    joined = scored.with_columns(key).join(
        causes.rename({"customer_id": "__key"}), on="__key", how="left"
    )
    return joined.drop("__key")


def _with_business_scores(scored: pl.DataFrame, path: str, column: str) -> pl.DataFrame:
    """The scored table with the business's score column of ``[priority] business_scores``
    (Float64; null for a customer the file does not list; docs/methods.md#priority-blend)."""
    frame = _read_customers_like(path, "priority.business_scores", "business scores")
    if column not in frame.columns:
        raise WinbackInputError(
            f"business scores file {path!r} has no {column!r} column (columns: "
            f"{', '.join(frame.columns)}); config key priority.business_score_col"
        )
    try:
        frame = frame.select(
            pl.col("customer_id").alias("__key"),
            pl.col(column).str.strip_chars().cast(pl.Float64, strict=True),
        )
    except pl.exceptions.PolarsError:
        raise WinbackInputError(
            f"business scores file {path!r}: column {column!r} holds values that are not numbers"
        ) from None
    bad = frame.filter(~pl.col(column).is_finite())
    if bad.height:
        raise WinbackInputError(
            f"business scores file {path!r}: {column!r} is NaN or infinite for customer "
            f"{bad['__key'][0]!r}"
        )
    key = pl.col("customer_id").cast(pl.String).alias("__key")
    drop = [column] if column in scored.columns else []
    joined = scored.drop(drop).with_columns(key).join(frame, on="__key", how="left")
    return joined.drop("__key")


def _recommendations_for(cfg: LoopConfig, customers: pl.Series) -> pl.DataFrame:
    """``customer_id`` (text) and ``recommended_products`` (a list of product ids as text) for
    ``customers``, from the config's sources (``[recommend]``; docs/methods.md#recommendations)."""
    from winback.recommend import recommend

    recs = recommend(
        list(cfg.sources),
        customers=customers,
        n=cfg.recommend_n,
        customer_col=cfg.customer_col,
        product_col=cfg.product_col,
        exclude_bought=cfg.recommend_exclude_bought,
        neighbours=cfg.recommend_neighbours,
        damping=cfg.recommend_damping,
    )
    return recs.select(
        pl.col("customer_id").cast(pl.String),
        pl.col("recommended_products").list.eval(pl.element().cast(pl.String)),
    )


def _scorecards_in(
    conn: sa.Connection, cfg: LoopConfig, prepared: PreparedTransactions, day: date
) -> pl.DataFrame:
    """:func:`~winback.loop.scorecards.scorecards` over the state read on ``conn``."""
    import sqlalchemy as sa

    import winback.loop.schema as schema
    from winback.loop.scorecards import purchase_days, scorecards

    t, c, k = schema.targets.c, schema.campaigns.c, schema.contacts.c
    targets = pl.DataFrame(
        [
            tuple(r)
            for r in conn.execute(
                sa.select(t.campaign_id, t.customer_id, t.arm, t.contact, t.staff, t.strategy)
                .where(t.entered_on <= day)
                .order_by(t.campaign_id, t.customer_id)
            )
        ],
        schema={
            "campaign_id": pl.String,
            "customer_id": pl.String,
            "arm": pl.String,
            "contact": pl.Boolean,
            "staff": pl.String,
            "strategy": pl.String,
        },
        orient="row",
    )
    campaigns = pl.DataFrame(
        [
            tuple(r)
            for r in conn.execute(
                sa.select(c.campaign_id, c.start_date)
                .where(c.name == cfg.name)
                .where(c.start_date <= day)
            )
        ],
        schema={"campaign_id": pl.String, "start_date": pl.Date},
        orient="row",
    )
    contacts = pl.DataFrame(
        [
            tuple(r)
            for r in conn.execute(
                sa.select(k.customer_id, k.contact_date, k.campaign_id).where(k.contact_date <= day)
            )
        ],
        schema={"customer_id": pl.String, "contact_date": pl.Date, "campaign_id": pl.String},
        orient="row",
    )
    return scorecards(
        targets,
        campaigns,
        contacts,
        purchase_days(prepared.frame),
        window_days=cfg.window_days,
        as_of=day,
        reward_per_visit=cfg.reward_per_visit,
        reward_revenue_share=cfg.reward_revenue_share,
    )


def _refuse_past(conn: sa.Connection, day: date) -> bool:
    """Refuses a day before the latest run; True when ``day`` is the latest run (a re-run)."""
    import sqlalchemy as sa

    import winback.loop.schema as schema

    latest = conn.execute(sa.select(sa.func.max(schema.runs.c.run_date))).scalar()
    if latest is not None and day < latest:
        raise WinbackConfigError(
            f"a run for {day} is refused: the state already holds the run of {latest}, and runs go "
            f"forward in time (re-run {latest}, or run a later day)"
        )
    return latest == day


def _undo(conn: sa.Connection, day: date) -> None:
    """Removes what the run of ``day`` added (it is re-run next)."""
    import winback.loop.schema as schema

    conn.execute(schema.runs.delete().where(schema.runs.c.run_date == day))
    conn.execute(schema.snapshots.delete().where(schema.snapshots.c.run_date == day))
    conn.execute(schema.targets.delete().where(schema.targets.c.entered_on == day))
    conn.execute(schema.campaigns.delete().where(schema.campaigns.c.start_date == day))
    conn.execute(schema.evaluations.delete().where(schema.evaluations.c.evaluated_on == day))


def _campaign_for(conn: sa.Connection, cfg: LoopConfig, day: date) -> tuple[str, date]:
    """The campaign running on ``day``; a new one (NAME-YYYY-MM-DD) when none is."""
    import sqlalchemy as sa

    import winback.loop.schema as schema

    c = schema.campaigns.c
    row = conn.execute(
        sa.select(c.campaign_id, c.start_date)
        .where(c.name == cfg.name)
        .where(c.start_date <= day)
        .where(c.end_date > day)
        .order_by(c.start_date.desc())
        .limit(1)
    ).first()
    if row is not None:
        return str(row.campaign_id), row.start_date
    campaign_id = f"{cfg.name}-{day.isoformat()}"
    conn.execute(
        schema.campaigns.insert().values(
            campaign_id=campaign_id,
            name=cfg.name,
            start_date=day,
            end_date=day + timedelta(days=cfg.length_days),
            holdout=cfg.holdout,
            rules=cfg.rules,
        )
    )
    return campaign_id, day


def _evaluate_ended(
    conn: sa.Connection, cfg: LoopConfig, day: date, prepared: PreparedTransactions
) -> pl.DataFrame:
    """Evaluates every campaign whose window has ended by D and has no evaluation yet
    (docs/loop.md#evaluation), with :func:`winback.evaluate` over its targets (both arms, as
    they entered) and the transactions; stores and returns the rows.

    The window is ``evaluation_days`` (default ``length_days``) after the campaign's first day;
    a target who entered later is measured from that day too — both arms alike, since the arm
    does not depend on the day of entry.
    """
    import sqlalchemy as sa

    import winback.loop.schema as schema

    c, t, e = schema.campaigns.c, schema.targets.c, schema.evaluations.c
    window = cfg.window_days
    done = sa.select(e.campaign_id).distinct()
    due = conn.execute(
        sa.select(c.campaign_id, c.start_date)
        .where(c.name == cfg.name)
        .where(c.campaign_id.not_in(done))
        .order_by(c.start_date, c.campaign_id)
    ).all()
    rows: list[dict[str, Any]] = []
    integer_ids = prepared.frame.schema["customer"].is_integer()
    for campaign_id, start in due:
        if start + timedelta(days=window) > day:
            continue
        listed = [
            tuple(r)
            for r in conn.execute(
                sa.select(t.customer_id, t.arm, t.contact, t.strategy, t.segment)
                .where(t.campaign_id == campaign_id)
                .order_by(t.customer_id)
            )
        ]
        if not listed:
            continue
        frame = pl.DataFrame(
            listed,
            schema={
                "customer_id": pl.String,
                "arm": pl.String,
                "contact": pl.Boolean,
                "strategy": pl.String,
                "segment": pl.String,
            },
            orient="row",
        )
        if integer_ids:
            frame = frame.with_columns(pl.col("customer_id").cast(pl.Int64))
        result = evaluate(frame, prepared, window_days=window, start=start, migration_states=False)
        uplift = result.uplift.with_columns(pl.col(pl.Float64).fill_nan(None))
        for r in uplift.iter_rows(named=True):
            rows.append(
                {
                    "campaign_id": campaign_id,
                    "evaluated_on": day,
                    "segment": r["segment"] if r["segment"] is not None else "(none)",
                    "window_days": window,
                    "treated": int(r["customers_treatment"] or 0),
                    "control": int(r["customers_control"] or 0),
                    "rate_treatment": r["rate_treatment"],
                    "rate_control": r["rate_control"],
                    "uplift": r["rate_uplift"],
                    "uplift_low": r["rate_uplift_low"],
                    "uplift_high": r["rate_uplift_high"],
                }
            )
    if rows:
        conn.execute(schema.evaluations.insert(), rows)
    schema_ = {
        "campaign_id": pl.String,
        "evaluated_on": pl.Date,
        "segment": pl.String,
        "window_days": pl.Int64,
        "treated": pl.Int64,
        "control": pl.Int64,
        "rate_treatment": pl.Float64,
        "rate_control": pl.Float64,
        "uplift": pl.Float64,
        "uplift_low": pl.Float64,
        "uplift_high": pl.Float64,
    }
    return pl.DataFrame(rows, schema=schema_).select(EVALUATION_FILE_COLUMNS)


def _within_capacity(
    conn: sa.Connection, cfg: LoopConfig, campaign_id: str, fresh: pl.DataFrame
) -> pl.DataFrame:
    """The new targets the staff can take (docs/loop.md#staff-and-capacity).

    A staff member's room is their capacity less their open targets (active contact targets of
    the campaign). The new targets are taken in priority order, both arms, until the contacts
    among them fill the total room — the list is cut at one priority, so the arms stay
    comparable — and a contact whose dealt staff member is full goes to the one with the most
    room left (ties in ``staff.names`` order). The rest wait for a later day.
    """
    import sqlalchemy as sa

    import winback.loop.schema as schema

    names = cfg.staff or ()
    capacity = cfg.capacity or 0
    caps = (
        dict.fromkeys(names, capacity)
        if isinstance(capacity, int)
        else {name: int(capacity.get(name, 0)) for name in names}
    )
    t = schema.targets.c
    load = {
        who: int(count)
        for who, count in conn.execute(
            sa.select(t.staff, sa.func.count())
            .where(t.campaign_id == campaign_id)
            .where(t.contact)
            .where(t.status == "active")
            .group_by(t.staff)
        )
    }
    room = {name: max(0, caps[name] - int(load.get(name, 0))) for name in names}
    total = sum(room.values())
    contacts = fresh.get_column("contact").cum_sum()
    keep = fresh.height
    if fresh.height and int(contacts[-1]) > total:
        keep = int((contacts <= total).arg_min() or 0)  # first row past the room
    kept = fresh.head(keep)
    staff: list[str | None] = []
    for who, contact in zip(kept.get_column("staff"), kept.get_column("contact"), strict=True):
        if not contact:
            staff.append(None)
            continue
        if who is None or room.get(who, 0) == 0:
            who = max(names, key=lambda name: (room[name], -names.index(name)))
        room[who] -= 1
        staff.append(who)
    return kept.with_columns(pl.Series("staff", staff, dtype=pl.String))


def _update_targets(
    conn: sa.Connection,
    cfg: LoopConfig,
    campaign_id: str,
    start: date,
    day: date,
    selected: set[str],
) -> None:
    """Status and next contact of every target of the campaign, from D's selection and the
    contacts recorded in the campaign up to D (docs/loop.md#follow-ups)."""
    import sqlalchemy as sa

    import winback.loop.schema as schema

    t, k = schema.targets.c, schema.contacts.c
    made: dict[str, tuple[int, date]] = {
        r.customer_id: (int(r.n), r.last)
        for r in conn.execute(
            sa.select(
                k.customer_id, sa.func.count().label("n"), sa.func.max(k.contact_date).label("last")
            )
            .where(k.contact_date >= start)
            .where(k.contact_date <= day)
            .where(sa.or_(k.campaign_id.is_(None), k.campaign_id == campaign_id))
            .group_by(k.customer_id)
        )
    }
    updates = []
    for row in conn.execute(sa.select(schema.targets).where(t.campaign_id == campaign_id)):
        count, last = made.get(row.customer_id, (0, None))
        status = "active" if row.customer_id in selected else "exited"
        next_contact = None
        if row.contact:
            if count >= cfg.max_contacts:
                status = "done" if status == "active" else status
            elif status == "active":
                interval = int(row.interval_days or 0)
                if last is None:
                    next_contact = row.entered_on + timedelta(days=interval)
                else:
                    next_contact = last + timedelta(days=max(interval, 1))
        updates.append(
            {
                "b_campaign": campaign_id,
                "b_customer": row.customer_id,
                "b_next": next_contact,
                "b_made": count,
                "b_status": status,
            }
        )
    if updates:
        conn.execute(
            schema.targets.update()
            .where(t.campaign_id == sa.bindparam("b_campaign"))
            .where(t.customer_id == sa.bindparam("b_customer"))
            .values(
                next_contact=sa.bindparam("b_next"),
                contacts_made=sa.bindparam("b_made"),
                status=sa.bindparam("b_status"),
            ),
            updates,
        )
    # targets of campaigns that ended by D: no more follow-ups
    ended = sa.select(schema.campaigns.c.campaign_id).where(schema.campaigns.c.end_date <= day)
    conn.execute(
        schema.targets.update()
        .where(t.campaign_id.in_(ended))
        .where(t.status.in_(("active", "exited", "done")))
        .values(status="ended", next_contact=None)
    )


def _write_snapshots(
    conn: sa.Connection, scored: pl.DataFrame, sel: pl.DataFrame, day: date
) -> None:
    import winback.loop.schema as schema

    value_col = next((c for c in ("clv", "expected_value") if c in scored.columns), None)
    frame = scored.select(
        pl.col("customer_id").cast(pl.String),
        pl.col("rank_ratio_group").cast(pl.String),
        pl.col("silence_band").cast(pl.String),
        pl.col("silence_score").cast(pl.Float64),
        pl.col("recency_days").cast(pl.Float64),
        (pl.col(value_col) if value_col else pl.lit(None)).cast(pl.Float64).alias("value"),
        (pl.col("value_tier") if "value_tier" in scored.columns else pl.lit(None))
        .cast(pl.String)
        .alias("value_tier"),
    ).join(sel.select("customer_id", "segment"), on="customer_id", how="left")
    frame = frame.with_columns(
        pl.col("segment").is_not_null().alias("selected"), pl.lit(day).alias("run_date")
    )
    # NaN is not a portable SQL value (and never an output): stored as null
    frame = frame.with_columns(pl.col(pl.Float64).fill_nan(None))
    rows = frame.to_dicts()
    for start in range(0, len(rows), 10_000):
        conn.execute(schema.snapshots.insert(), rows[start : start + 10_000])


def _targets_frame(conn: sa.Connection, campaign_id: str, day: date) -> pl.DataFrame:
    import sqlalchemy as sa

    import winback.loop.schema as schema

    t = schema.targets.c
    rows = [
        tuple(r)
        for r in conn.execute(
            sa.select(
                t.campaign_id,
                t.customer_id,
                t.arm,
                t.contact,
                t.staff,
                t.strategy,
                t.segment,
                t.entered_on,
                t.next_contact,
                t.contacts_made,
                t.status,
                (t.entered_on == day).label("new_target"),
            )
            .where(t.campaign_id == campaign_id)
            .order_by(t.entered_on, t.customer_id)
        )
    ]
    schema_ = {
        "campaign_id": pl.String,
        "customer_id": pl.String,
        "arm": pl.String,
        "contact": pl.Boolean,
        "staff": pl.String,
        "strategy": pl.String,
        "segment": pl.String,
        "entered_on": pl.Date,
        "next_contact": pl.Date,
        "contacts_made": pl.Int64,
        "status": pl.String,
        "new_target": pl.Boolean,
    }
    return pl.DataFrame(rows, schema=schema_, orient="row")


def _stage_files(
    folder: Path, day: date, frames: Mapping[str, pl.DataFrame], staged: list[tuple[Path, Path]]
) -> tuple[Path, ...]:
    """Writes each frame to a temporary file next to its final name (renamed after commit):
    ``NAME-D.csv``, or ``NAME-D.jsonl`` (JSON lines) for a name ending in ``.jsonl``."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WinbackConfigError(
            f"config key outputs.dir: {str(folder)!r} cannot be created ({exc.strerror})"
        ) from None
    finals = []
    for name, frame in frames.items():
        stem, _, kind = name.partition(".")
        final = folder / f"{stem}-{day.isoformat()}.{kind or 'csv'}"
        # left by a run killed before its rename; a live process's may be about to be renamed
        # (its run committed and released the lock), so only a dead process's are removed
        for stale in folder.glob(f".{final.name}.*"):
            if not _alive(stale.name[len(final.name) + 2 :].split(".", 1)[0]):
                stale.unlink(missing_ok=True)
        handle, temp_name = tempfile.mkstemp(prefix=f".{final.name}.{os.getpid()}.", dir=folder)
        os.close(handle)
        temp = Path(temp_name)
        staged.append((temp, final))
        if kind == "jsonl":
            frame.write_ndjson(temp)
        else:
            frame.write_csv(temp)
        finals.append(final)
    return tuple(finals)


def _alive(pid_text: str) -> bool:
    """Whether the process of a temporary file's name still runs (False for a name without
    one)."""
    if not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by another user
        return True
    return True


def _reads_p_lapse(cfg: LoopConfig) -> bool:
    """Whether ``[priority]`` orders the list by p_lapse (``kind = "lapse_value"``, or a blend
    with a p_lapse weight above 0; docs/methods.md#priority-blend)."""
    if cfg.priority == "lapse_value":
        return True
    weights = PRIORITY_WEIGHTS if cfg.priority_weights is None else cfg.priority_weights
    return cfg.priority == "blend" and float(weights.get("p_lapse", 0.0)) > 0
