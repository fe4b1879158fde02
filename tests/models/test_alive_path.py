"""One customer's P(alive) path (docs/methods.md#alive-path) against P(alive) on summaries cut
at each point, and the typed failures."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import winback
from winback.datasets import read_cdnow_text
from winback.errors import WinbackInputError
from winback.models import BetaGeoModel, ParetoNBDModel
from winback.summary import alive_path

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


@pytest.fixture(scope="module")
def tx() -> pl.DataFrame:
    return read_cdnow_text(DATA / "CDNOW_sample.txt")


@pytest.mark.parametrize(("cls", "unit"), [(BetaGeoModel, "D"), (ParetoNBDModel, "W")])
def test_path_equals_summaries_cut_at_each_point(tx: pl.DataFrame, cls: type, unit: str) -> None:
    pair = winback.summary(tx, as_of=date(1997, 9, 30), unit=unit, return_info=True)
    model = cls().fit(pair)
    customer = 4  # purchases on 1997-01-01, 01-18, 08-02, 12-12
    path = alive_path(model, tx, customer, as_of=date(1997, 9, 30))
    step = 1 if unit == "D" else 7
    assert path["moment"][0].date() == date(1997, 1, 1)
    assert path["T"].to_list() == [float(i) for i in range(path.height)]
    # the last point is the calibration summary's own row
    for i in (0, 5, 17, 30, path.height - 1):
        cut = date(1997, 1, 1) + timedelta(days=step * i)
        frame = winback.summary(tx, as_of=cut, unit=unit).filter(pl.col("customer_id") == customer)
        row = path.row(i, named=True)
        assert (row["frequency"], row["recency"], row["T"]) == frame.select(
            "frequency", "recency", "T"
        ).row(0)
        expected = model.probability_alive((frame, pair[1]))[0]
        assert row["probability_alive"] == pytest.approx(expected, rel=1e-13)
    # BG/NBD: 1 before the first repeat (day 17), then it decays during silence and jumps back
    # at the next purchase (1997-08-02, day 213)
    if unit == "D":
        p = path["probability_alive"].to_numpy()
        assert np.all(p[:17] == 1.0)
        assert np.all(np.diff(p[17:213]) < 0)
        assert p[213] > p[212]


def test_unknown_customer(tx: pl.DataFrame) -> None:
    model = BetaGeoModel().fit(winback.summary(tx, as_of=date(1997, 9, 30), return_info=True))
    with pytest.raises(WinbackInputError, match="customer 999999"):
        alive_path(model, tx, 999999)
