"""Simulated responses for trying the loop (docs/loop.md#evaluation): purchases of a campaign's
targets after its start, with a known extra probability for the treated arm — the planted uplift
an evaluation should recover.

:func:`simulate_responses` draws a campaign's responses at once; :func:`init_demo` and
:func:`simulate_day` drive the two-week walk-through of docs/loop.md#a-two-week-loop day by day
from the command line::

    python -m winback.loop.simulate init loop-demo            # sales.parquet + winback.toml
    winback run -c loop-demo/winback.toml --as-of 2024-03-01
    python -m winback.loop.simulate day loop-demo 2024-03-01  # the day's calls and answers
    winback contacts import loop-demo/crm-2024-03-01.csv -c loop-demo/winback.toml
"""

from __future__ import annotations

import argparse
import sys
from datetime import date, datetime, time, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from winback.campaign import assignment_hash
from winback.errors import WinbackConfigError, WinbackError

__all__ = ["demo_transactions", "init_demo", "simulate_day", "simulate_responses"]

#: The demo's config (docs/loop.md#a-two-week-loop): two-week campaigns, half held out, every
#: target contacted (one strategy), three staff members calling every other day.
DEMO_CONFIG = """\
# The two-week demo loop (docs/loop.md#a-two-week-loop), written by
# python -m winback.loop.simulate init
[source]
paths = ["sales.parquet"]

[campaign]
name = "demo"
length_days = 14
holdout = 0.5
cool_down_days = 14
max_contacts = 3
strategy_map = {{ "*" = "call" }}
cadence = {{ group_e = 2, group_d = 2, silent = 2 }}

[staff]
names = ["ann", "bo", "cy"]
reward_per_visit = 20

[outputs]
dir = "out"

[database]
url = "{database}"
"""
_TWO_64 = float(2**64)


def simulate_responses(
    targets: pl.DataFrame,
    *,
    start: date,
    window_days: int,
    base_rate: float,
    uplift: float,
    amount: float = 50.0,
    seed: int = 0,
) -> pl.DataFrame:
    """One purchase within the window for each target who responds: a control target with
    probability ``base_rate``, a treatment target with ``base_rate + uplift``.

    ``targets`` has ``customer_id`` and ``arm`` (the ``targets`` state table, or
    :func:`winback.campaign`'s list). Returns ``customer_id, ts, amount`` — the purchases, on a
    day after ``start`` up to ``start + window_days``, at noon — to append to the transactions.
    The draws follow the targets sorted by id, so the same targets and seed give the same rows.
    """
    if not (0 <= base_rate <= 1 and 0 <= base_rate + uplift <= 1):
        raise WinbackConfigError(
            f"base_rate={base_rate!r} and base_rate + uplift={base_rate + uplift!r} must be "
            "probabilities in [0, 1]"
        )
    if window_days < 1:
        raise WinbackConfigError(f"window_days={window_days!r} must be ≥ 1")
    rng = np.random.default_rng(seed)
    listed = targets.select("customer_id", pl.col("arm").cast(pl.String)).sort("customer_id")
    chance = np.where(
        listed.get_column("arm").to_numpy() == "treatment", base_rate + uplift, base_rate
    )
    buys = rng.random(listed.height) < chance
    days = rng.integers(1, window_days + 1, listed.height)
    noon = datetime.combine(start, time(12))
    stamps = [noon + timedelta(days=int(d)) for d in days]
    return pl.DataFrame(
        {
            "customer_id": listed.get_column("customer_id"),
            "ts": pl.Series(stamps, dtype=pl.Datetime("us")),
            "amount": pl.Series([amount] * listed.height, dtype=pl.Float64),
        }
    ).filter(pl.Series(buys))


def demo_transactions(customers: int = 1500, *, start: date, seed: int = 7) -> pl.DataFrame:
    """Generated purchases up to ``start`` (``customer_id, ts, amount``): each customer buys with
    a regular gap of 5–40 days (±30 %) from about 14 months before ``start`` and stops on a
    random day in the 5 months before it, so customers fall silent every day. Nobody buys
    after ``start`` on their own: every later purchase is a simulated response."""
    rng = np.random.default_rng(seed)
    begin = datetime.combine(start, time()) - timedelta(days=425)
    rows: dict[str, list[object]] = {"customer_id": [], "ts": [], "amount": []}
    for customer in range(1, customers + 1):
        gap = int(rng.integers(5, 41))
        t = float(rng.uniform(0, 60))
        stop = float(rng.uniform(275, 425))
        while t < stop:
            rows["customer_id"].append(customer)
            rows["ts"].append(begin + timedelta(days=t, hours=float(rng.uniform(8, 20))))
            rows["amount"].append(round(float(rng.gamma(4, 20)), 2))
            t += gap * float(rng.uniform(0.7, 1.3))
    return pl.DataFrame(
        rows, schema={"customer_id": pl.Int64, "ts": pl.Datetime("us"), "amount": pl.Float64}
    )


def init_demo(
    folder: str | Path,
    *,
    start: date = date(2024, 3, 1),
    customers: int = 1500,
    database: str = "sqlite:///winback-state.db",
    seed: int = 7,
) -> Path:
    """Writes ``sales.parquet`` (:func:`demo_transactions`) and ``winback.toml`` (the demo's
    config, state in ``database``) into ``folder``; returns the config's path."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    demo_transactions(customers, start=start, seed=seed).write_parquet(out / "sales.parquet")
    config = out / "winback.toml"
    config.write_text(DEMO_CONFIG.format(database=database), encoding="utf-8")
    return config


def simulate_day(
    folder: str | Path,
    day: date | str,
    *,
    base_rate: float = 0.15,
    uplift: float = 0.25,
    seed: int = 0,
) -> tuple[Path, int]:
    """The day after the run of ``day`` in the demo ``folder``: the staff made every contact
    due on ``day`` (written as the CRM's CSV ``crm-DAY.csv`` for ``winback contacts import``),
    and the targets who respond buy on the next day (appended to ``sales.parquet``, which the
    next run reads). Returns the CRM file and the purchases added.

    Each target of a campaign responds once in the campaign's window with probability
    ``base_rate`` (control, and treated customers who are not contacted) or ``base_rate +
    uplift`` (contacted treatment), on a day after they entered — both drawn from the stable
    hash of (campaign, customer, ``seed``), so the answer does not depend on the day it is
    asked. Nobody else buys after the start: an evaluation should find ``uplift``.
    """
    from winback.loop.pipeline import Pipeline

    if not (0 <= base_rate <= 1 and 0 <= base_rate + uplift <= 1):
        raise WinbackConfigError(
            f"base_rate={base_rate!r} and base_rate + uplift={base_rate + uplift!r} must be "
            "probabilities in [0, 1]"
        )
    out = Path(folder)
    today = day if isinstance(day, date) else date.fromisoformat(str(day))
    pipeline = Pipeline(out / "winback.toml")
    due_file = Path(pipeline.config.outputs) / f"due-{today.isoformat()}.csv"
    if not due_file.is_file():
        raise WinbackConfigError(
            f"{str(due_file)!r} does not exist: run `winback run --as-of {today}` first"
        )
    due = pl.read_csv(due_file, schema_overrides={"customer_id": pl.String})
    crm = out / f"crm-{today.isoformat()}.csv"
    due.select(
        pl.col("customer_id").alias("customer"),
        pl.lit(today.isoformat()).alias("date"),
        "staff",
        pl.lit("call").alias("channel"),
        pl.col("campaign_id").alias("campaign"),
    ).write_csv(crm)
    tomorrow = today + timedelta(days=1)
    campaigns = pipeline.table("campaigns").select("campaign_id", "start_date")
    window = pipeline.config.window_days
    targets = pipeline.table("targets").join(campaigns, on="campaign_id")
    bought: list[int] = []
    for (campaign_id,), group in targets.partition_by(
        "campaign_id", as_dict=True, maintain_order=True
    ).items():
        ids = group.get_column("customer_id").cast(pl.Int64)
        salt = f"{campaign_id}/respond/{seed}"
        frame = group.select(
            ids.alias("id"),
            ((pl.col("arm") == "treatment") & pl.col("contact")).alias("treated"),
            (pl.col("entered_on") + pl.duration(days=1)).alias("first"),
            (pl.col("start_date") + pl.duration(days=window)).alias("last"),
            (assignment_hash(ids, salt).cast(pl.Float64) / _TWO_64).alias("u_buy"),
            (assignment_hash(ids, salt + "/day").cast(pl.Float64) / _TWO_64).alias("u_day"),
        ).with_columns(((pl.col("last") - pl.col("first")).dt.total_days() + 1).alias("span"))
        offset = (pl.col("u_day") * pl.col("span")).floor().cast(pl.Int64)
        chance = pl.when(pl.col("treated")).then(base_rate + uplift).otherwise(base_rate)
        hits = frame.filter(
            (pl.col("u_buy") < chance)
            & (pl.col("span") >= 1)
            & (pl.col("first") + pl.duration(days=offset) == tomorrow)
        )
        bought += hits.get_column("id").to_list()
    sales_file = out / "sales.parquet"
    sales = pl.read_parquet(sales_file)
    noon = datetime.combine(tomorrow, time(12))
    added = pl.DataFrame(
        {
            "customer_id": pl.Series(sorted(bought), dtype=sales.schema["customer_id"]),
            "ts": pl.Series([noon] * len(bought), dtype=sales.schema["ts"]),
            "amount": pl.Series([50.0] * len(bought), dtype=sales.schema["amount"]),
        }
    )
    pl.concat([sales, added.select(sales.columns)]).write_parquet(sales_file)
    return crm, added.height


def main(argv: list[str] | None = None) -> int:
    """``python -m winback.loop.simulate init DIR`` / ``day DIR DATE`` (docs/loop.md)."""
    parser = argparse.ArgumentParser(
        prog="python -m winback.loop.simulate",
        description="The two-week demo of the daily loop (docs/loop.md#a-two-week-loop).",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    init = commands.add_parser("init", help="write sales.parquet and winback.toml")
    init.add_argument("folder")
    init.add_argument("--start", default="2024-03-01", help="the first day (YYYY-MM-DD)")
    init.add_argument("--customers", type=int, default=1500)
    init.add_argument("--database", default="sqlite:///winback-state.db")
    day = commands.add_parser("day", help="the staff's contacts and the answers of a day")
    day.add_argument("folder")
    day.add_argument("date", help="the day just run (YYYY-MM-DD)")
    day.add_argument("--base-rate", type=float, default=0.15)
    day.add_argument("--uplift", type=float, default=0.25)
    args = parser.parse_args(argv)
    try:
        if args.command == "init":
            path = init_demo(
                args.folder,
                start=date.fromisoformat(args.start),
                customers=args.customers,
                database=args.database,
            )
            print(f"wrote {path} and {path.parent / 'sales.parquet'}")
        else:
            crm, added = simulate_day(
                args.folder, args.date, base_rate=args.base_rate, uplift=args.uplift
            )
            print(f"wrote {crm}; {added} customers buy on the next day")
    except (WinbackError, ValueError) as exc:
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
