"""The MLflow pyfunc flavour (docs/serving.md#mlflow): a saved and reloaded model scores one
customer per input row, in input order, equal to Scorer.score bit for bit; ``as_of`` is a
parameter; bad input is a typed error."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

pytest.importorskip("mlflow")

import pandas as pd
from mlflow import pyfunc

from winback.datasets import load_cdnow
from winback.errors import WinbackConfigError, WinbackInputError
from winback.models import BetaGeoModel, GammaGammaModel
from winback.summary import summary

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::FutureWarning")

VALUE = {"horizon": 6, "value_levels": [20.0, 100.0]}


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("mlflow")
    models = folder / "models"
    models.mkdir()
    stats = summary(load_cdnow(), as_of="1998-06-30", return_info=True)
    BetaGeoModel().fit(stats).save(models / "bgnbd.json")
    GammaGammaModel().fit(stats).save(models / "gg.json")
    from winback.mlflow import save_model

    save_model(folder / "pyfunc", models, value=VALUE)
    return models, folder / "pyfunc"


def per_customer(ids: list[int]) -> tuple[pl.DataFrame, pl.DataFrame]:
    tx = load_cdnow().filter(pl.col("customer_id").is_in(ids)).select("customer_id", "ts", "amount")
    rows = tx.group_by("customer_id").agg("ts", "amount")
    order = pl.DataFrame({"customer_id": ids}, schema={"customer_id": tx.schema["customer_id"]})
    return tx, order.join(rows, on="customer_id", how="left")


@pytest.mark.parametrize("as_of", ["1998-06-30", "1998-01-31"])
def test_pyfunc_equals_the_scorer_row_for_row(saved: tuple[Path, Path], as_of: str) -> None:
    from winback.mlflow import score_rows
    from winback.scorer import Scorer

    models, path = saved
    ids = [17, 3, 250, 1, 99, 42]
    tx, rows = per_customer(ids)
    scorer = Scorer.from_dir(models, value=VALUE)
    expected = scorer.score(tx, as_of=as_of)
    in_order = pl.DataFrame({"customer_id": ids}).join(expected, on="customer_id", how="left")
    got = score_rows(scorer, rows, as_of)
    assert got["customer_id"].to_list() == ids
    assert_frame_equal(got, in_order, check_exact=True)
    model = pyfunc.load_model(str(path))
    answer = model.predict(rows.to_pandas(), params={"as_of": as_of})
    pd.testing.assert_frame_equal(answer, got.to_pandas(), check_exact=True)


def test_pyfunc_refuses_bad_input(saved: tuple[Path, Path]) -> None:
    from winback.mlflow import save_model, score_rows
    from winback.scorer import Scorer

    models, _ = saved
    scorer = Scorer.from_dir(models)
    _, rows = per_customer([1, 2])
    with pytest.raises(WinbackInputError, match="customer_id repeats"):
        score_rows(scorer, pl.concat([rows, rows]), "1998-06-30")
    with pytest.raises(WinbackInputError, match="'ts' is missing"):
        score_rows(scorer, rows.drop("ts"), "1998-06-30")
    with pytest.raises(WinbackConfigError):
        save_model(models.parent / "nowhere", models.parent / "no-such-dir")
