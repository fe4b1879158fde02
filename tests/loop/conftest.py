"""Generated transactions and a config for the daily-loop tests."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

pytest.importorskip("sqlalchemy")

FIRST_DAY = "2024-03-01"


def transactions(n: int = 400, seed: int = 7) -> pl.DataFrame:
    """Customers with regular purchase gaps (5–40 days) from 2023, each stopping on a random day
    between 2023-10 and 2024-04: every day of March 2024 some fall silent."""
    rng = np.random.default_rng(seed)
    begin = datetime(2023, 1, 1)
    rows: dict[str, list[Any]] = {"customer_id": [], "ts": [], "amount": []}
    for customer in range(1, n + 1):
        gap = int(rng.integers(5, 41))
        t = float(rng.uniform(0, 60))
        stop = float(rng.uniform(270, 480))
        while t < stop:
            rows["customer_id"].append(customer)
            rows["ts"].append(begin + timedelta(days=t, hours=float(rng.uniform(8, 20))))
            rows["amount"].append(round(float(rng.gamma(4, 20)), 2))
            t += gap * float(rng.uniform(0.7, 1.3))
    return pl.DataFrame(rows)


@pytest.fixture(scope="session")
def sales_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sales") / "sales.parquet"
    transactions().write_parquet(path)
    return path


def config(folder: Path, sales: Path, **campaign: Any) -> dict[str, Any]:
    """A loop config (dict) with its database and outputs in ``folder``."""
    return {
        "source": {"paths": [str(sales)]},
        "campaign": {"name": "wb", "holdout": 0.2, "cool_down_days": 14, **campaign},
        "staff": {"names": ["ann", "bo"]},
        "outputs": {"dir": str(folder / "out")},
        "database": {"url": f"sqlite:///{folder / 'state.db'}"},
    }
