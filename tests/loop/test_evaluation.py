"""The loop evaluates campaigns whose windows have ended (docs/loop.md#evaluation): with
winback.evaluate, stored once in the evaluations table, the same on a re-run; on a simulated
campaign with a planted uplift, the evaluation recovers it within its interval."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from tests.loop.conftest import Database, config, transactions
from winback.loop import Pipeline
from winback.loop.simulate import simulate_responses

START = date(2024, 3, 1)
WINDOW = 30
BASE, UPLIFT = 0.15, 0.25


def planted(
    tmp_path: Path, database: Database, n: int = 1500
) -> tuple[Pipeline, Path, pl.DataFrame]:
    """A campaign run from START to its window's last day but one over transactions cut at
    START (nobody buys afterwards on their own), then the simulated responses of its targets
    appended to the source."""
    sales = tmp_path / "sales.parquet"
    cut = datetime.combine(START + timedelta(days=1), datetime.min.time())
    base = transactions(n=n, seed=11).filter(pl.col("ts") < cut)
    base.write_parquet(sales)
    pipeline = Pipeline(config(tmp_path, sales, database, holdout=0.5, length_days=WINDOW))
    pipeline.run(START)
    before = pipeline.run(START + timedelta(days=WINDOW - 1))
    assert before.evaluations.height == 0
    assert pipeline.table("evaluations").height == 0  # the window has not ended yet
    targets = pipeline.table("targets").with_columns(pl.col("customer_id").cast(pl.Int64))
    responses = simulate_responses(
        targets, start=START, window_days=WINDOW, base_rate=BASE, uplift=UPLIFT, seed=3
    )
    pl.concat([base, responses.select(base.columns)]).write_parquet(sales)
    return pipeline, sales, targets


def test_the_planted_uplift_is_recovered(tmp_path: Path, database: Database) -> None:
    pipeline, _, targets = planted(tmp_path, database)
    assert targets.height > 150
    result = pipeline.run(START + timedelta(days=WINDOW))
    stored = pipeline.table("evaluations")
    assert stored.height == result.evaluations.height > 0
    overall = stored.filter(pl.col("segment") == "all").row(0, named=True)
    assert overall["campaign_id"] == "wb-2024-03-01"
    assert overall["window_days"] == WINDOW
    assert overall["treated"] + overall["control"] == targets.height
    assert overall["uplift_low"] <= UPLIFT <= overall["uplift_high"]
    assert overall["uplift_low"] > 0  # the effect is seen, not only allowed
    assert abs(overall["rate_control"] - BASE) < 0.1
    names = [p.name for p in result.files]
    assert "evaluations-2024-03-31.csv" in names
    written = pl.read_csv(Path(pipeline.config.outputs) / "evaluations-2024-03-31.csv")
    assert written.height == stored.height


def test_an_evaluation_is_stored_once_and_a_rerun_gives_the_same_rows(
    tmp_path: Path, database: Database
) -> None:
    pipeline, _, _ = planted(tmp_path, database, n=400)
    end = START + timedelta(days=WINDOW)
    pipeline.run(end)
    first = pipeline.table("evaluations")
    assert first.height > 0
    pipeline.run(end)  # re-run of the same day
    assert pipeline.table("evaluations").equals(first)
    pipeline.run(end + timedelta(days=1))  # a later day: evaluated already, not again
    assert pipeline.table("evaluations").equals(first)


def test_evaluation_days_sets_the_window(
    tmp_path: Path, sales_file: Path, database: Database
) -> None:
    pipeline = Pipeline(config(tmp_path, sales_file, database, length_days=10, evaluation_days=5))
    assert pipeline.config.window_days == 5
    pipeline.run("2024-03-01")
    assert pipeline.run("2024-03-05").evaluations.height == 0
    evaluated = pipeline.run("2024-03-06").evaluations
    assert evaluated.height > 0
    assert set(evaluated.get_column("window_days").to_list()) == {5}


def test_a_bad_evaluation_window_names_the_key(tmp_path: Path, sales_file: Path) -> None:
    from winback.errors import WinbackConfigError

    with pytest.raises(WinbackConfigError, match=r"campaign\.evaluation_days"):
        Pipeline(config(tmp_path, sales_file, evaluation_days=0))


def test_a_failed_run_on_the_evaluation_day_stores_no_evaluation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database: Database
) -> None:
    import winback.loop.pipeline as pipeline_module

    pipeline, _, _ = planted(tmp_path, database, n=400)
    end = START + timedelta(days=WINDOW)

    def fail(name: str) -> None:
        if name == "files":
            raise RuntimeError("injected")

    monkeypatch.setattr(pipeline_module, "checkpoint", fail)
    with pytest.raises(RuntimeError, match="injected"):
        pipeline.run(end)
    assert pipeline.table("evaluations").height == 0
    monkeypatch.undo()
    assert pipeline.run(end).evaluations.height > 0
