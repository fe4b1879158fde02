"""``winback recommend`` and ``winback campaign --recommend``, run as a user would, and the
recommendations in the loop's ``targets-D.csv`` (docs/methods.md#recommendations)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

import winback
from winback.errors import WinbackInputError
from winback.recommend import products_as_text


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "winback.cli", *args], capture_output=True, text=True, check=False
    )


@dataclass
class Ran:
    returncode: int
    stderr: str
    stdout: str = ""


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., Ran]:
    """``winback ARGS`` in this process, through ``main`` (exit codes and one-line errors as a
    subprocess has them; one interpreter start per call would cost seconds)."""
    from winback.cli._app import main
    from winback.cli._common import state

    def invoke(*args: str) -> Ran:
        saved = dict(state)
        capsys.readouterr()
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(sys, "argv", ["winback", *args])
            try:
                main()
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            finally:
                state.update(saved)
        captured = capsys.readouterr()
        return Ran(code, captured.err, captured.out)

    return invoke


# c1: A B | c2: A B C | c3: A C | c4: B D | c5: A (tests/test_recommend.py's hand case)
HAND = pl.DataFrame(
    {
        "customer_id": [1, 1, 2, 2, 2, 3, 3, 4, 4, 5],
        "ts": [f"2024-01-0{d}" for d in range(1, 10)] + ["2024-01-09"],
        "amount": [1.0] * 10,
        "sku": ["A", "B", "A", "B", "C", "A", "C", "B", "D", "A"],
    }
)


@pytest.fixture
def hand_csv(tmp_path: Path) -> Path:
    path = tmp_path / "sales.csv"
    HAND.write_csv(path)
    return path


def test_recommend_writes_the_library_table(hand_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "recs.parquet"
    result = run("recommend", str(hand_csv), "--product-col", "sku", "-n", "3", "-o", str(out))
    assert result.returncode == 0, result.stderr
    got = pl.read_parquet(out)
    assert_frame_equal(got, winback.recommend(hand_csv, product_col="sku", n=3))
    # the hand-computed cosine lists (ids read from CSV as text)
    lists = dict(got.select("customer_id", "recommended_products").rows())
    assert lists["4"] == ["A", "C"]
    assert lists["5"] == ["C", "B", "D"]


def test_recommend_csv_joins_the_lists(
    hand_csv: Path, tmp_path: Path, cli: Callable[..., Ran]
) -> None:
    out = tmp_path / "recs.csv"
    result = cli("recommend", str(hand_csv), "--product-col", "sku", "-n", "3", "-o", str(out))
    assert result.returncode == 0, result.stderr
    text = pl.read_csv(out, infer_schema=False)
    assert text.columns == ["customer_id", "recommended_products", "recommendation_scores"]
    cells = dict(text.select("customer_id", "recommended_products").rows())
    assert cells["5"] == "C|B|D"
    assert cells["4"] == "A|C"
    # the scores cell splits back into the library's numbers
    want = winback.recommend(hand_csv, product_col="sku", n=3)
    row = dict(text.select("customer_id", "recommendation_scores").rows())
    for customer, scores in want.select("customer_id", "recommendation_scores").rows():
        assert [float(x) for x in row[customer].split("|")] == scores


def test_recommend_for_a_customers_file(tmp_path: Path, cli: Callable[..., Ran]) -> None:
    # text ids with leading zeros stay as they are, in the transactions and in the file
    sales = tmp_path / "sales.csv"
    HAND.with_columns(pl.format("00{}", pl.col("customer_id")).alias("customer_id")).write_csv(
        sales
    )
    wanted = tmp_path / "targets.csv"
    pl.DataFrame({"customer_id": ["005", "004", "005", "009"], "x": [1, 2, 3, 4]}).write_csv(wanted)
    out = tmp_path / "recs.csv"
    result = cli(
        "recommend", str(sales), "--product-col", "sku", "--customers", str(wanted), "-o", str(out)
    )
    assert result.returncode == 0, result.stderr
    got = dict(pl.read_csv(out, infer_schema=False).select(pl.nth(0), pl.nth(1)).rows())
    # 009 bought nothing: the most-bought products (A 4, B 3, C 2, D 1)
    assert got == {"004": "A|C", "005": "C|B|D", "009": "A|B|C|D"}


def test_recommend_json_summary(hand_csv: Path, tmp_path: Path, cli: Callable[..., Ran]) -> None:
    import json

    out = tmp_path / "recs.parquet"
    result = cli(
        "recommend", str(hand_csv), "--product-col", "sku", "-n", "3", "-o", str(out), "--json"
    )
    assert result.returncode == 0, result.stderr
    # 4 products, bought ones left out: only customer 5 (bought A alone) gets 3; 1, 3 and 4
    # bought two (2 left each), 2 bought three (1 left)
    assert json.loads(result.stdout) == {
        "customers": 5,
        "products_per_customer": 3,
        "short_lists": 4,
        "output": str(out),
    }


def test_recommend_include_bought(hand_csv: Path, tmp_path: Path, cli: Callable[..., Ran]) -> None:
    out = tmp_path / "recs.parquet"
    args = ("--product-col", "sku", "-n", "2", "-o", str(out))
    assert cli("recommend", str(hand_csv), *args, "--include-bought").returncode == 0
    want = winback.recommend(hand_csv, product_col="sku", n=2, exclude_bought=False)
    assert_frame_equal(pl.read_parquet(out), want)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--product-col", "item"), "--product-col"),
        (("--product-col", "sku", "-n", "0"), "must be a whole number"),
        (("--product-col", "sku", "--damping", "2"), "damping"),
        (("--product-col", "sku", "--threads", "0"), "--threads"),
        (("--product-col", "sku", "--customers", "nowhere.csv"), "does not exist"),
        (("--product-col", "sku", "--customers", "list.txt"), ".csv or .parquet"),
    ],
)
def test_recommend_refusals(
    hand_csv: Path, tmp_path: Path, extra: tuple[str, ...], message: str, cli: Callable[..., Ran]
) -> None:
    out = tmp_path / "recs.csv"
    result = cli("recommend", str(hand_csv), *extra, "-o", str(out))
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "product_col=" not in result.stderr  # the advice names the flag
    assert "Traceback" not in result.stderr
    assert not out.exists()


def test_recommend_customers_file_without_ids(
    hand_csv: Path, tmp_path: Path, cli: Callable[..., Ran]
) -> None:
    wanted = tmp_path / "list.csv"
    pl.DataFrame({"who": [1, 2]}).write_csv(wanted)
    result = cli(
        "recommend", str(hand_csv), "--product-col", "sku", "--customers", str(wanted),
        "-o", str(tmp_path / "r.csv"),
    )  # fmt: skip
    assert result.returncode == 2
    assert "no 'customer_id' column" in result.stderr
    assert "who" in result.stderr


def test_recommend_refuses_its_input_as_output(hand_csv: Path, cli: Callable[..., Ran]) -> None:
    result = cli("recommend", str(hand_csv), "--product-col", "sku", "-o", str(hand_csv))
    assert result.returncode == 2
    assert "is an input of this command" in result.stderr
    assert pl.read_csv(hand_csv).height == HAND.height


def test_products_as_text_refuses_the_separator_in_an_id() -> None:
    frame = pl.DataFrame({"customer_id": [1, 2], "recommended_products": [["a"], ["b|c", "d"]]})
    with pytest.raises(WinbackInputError, match=r"first row 1.*Parquet"):
        products_as_text(frame)
    # no list column: unchanged
    plain = pl.DataFrame({"customer_id": [1]})
    assert products_as_text(plain) is plain


# ---------------------------------------------------------------------------------------------
# winback campaign --recommend


def _products(tx: pl.DataFrame) -> pl.DataFrame:
    """Every customer buys two products (customer mod 6 and the next one)."""
    return tx.with_columns(
        pl.when(pl.int_range(pl.len()).over("customer_id") % 2 == 0)
        .then(pl.col("customer_id") % 6)
        .otherwise((pl.col("customer_id") + 1) % 6)
        .alias("product_id")
    )


def test_campaign_recommend(tmp_path: Path, cli: Callable[..., Ran]) -> None:
    from tests.loop.conftest import transactions

    tx = _products(transactions(n=120))
    sales = tmp_path / "sales.parquet"
    tx.write_parquet(sales)
    common = ("campaign", str(sales), "--campaign-id", "c", "--as-of", "2024-03-01")
    plain, listed = tmp_path / "plain.parquet", tmp_path / "targets.parquet"
    assert cli(*common, "-o", str(plain)).returncode == 0
    result = cli(*common, "--recommend", "2", "-o", str(listed))
    assert result.returncode == 0, result.stderr
    got = pl.read_parquet(listed)
    base = pl.read_parquet(plain)
    assert got.height > 10
    # the list is unchanged, with the recommendations last
    assert got.columns == [*base.columns, "recommended_products"]
    assert_frame_equal(got.drop("recommended_products"), base)
    want = dict(
        winback.recommend(tx, n=2, customers=got["customer_id"])
        .select("customer_id", "recommended_products")
        .rows()
    )
    for customer, products in got.select("customer_id", "recommended_products").rows():
        assert products == want[customer]
        assert len(products) == 2
    # a CSV holds them as text
    as_csv = tmp_path / "targets.csv"
    assert cli(*common, "--recommend", "2", "-o", str(as_csv)).returncode == 0
    text = pl.read_csv(as_csv, infer_schema=False)
    assert text["recommended_products"].to_list() == [
        "|".join(str(p) for p in ps) for ps in got["recommended_products"]
    ]


def test_campaign_recommend_refusals(tmp_path: Path, cli: Callable[..., Ran]) -> None:
    from tests.loop.conftest import transactions

    tx = transactions(n=40)
    sales = tmp_path / "sales.parquet"
    tx.write_parquet(sales)
    out = tmp_path / "t.csv"
    common = ("campaign", str(sales), "--campaign-id", "c", "-o", str(out))
    missing = cli(*common, "--recommend", "3")
    assert missing.returncode == 2
    assert "--product-col" in missing.stderr
    assert not out.exists()
    scored = tmp_path / "scores.parquet"
    winback.silence(tx).write_parquet(scored)
    result = cli("campaign", str(scored), "--campaign-id", "c", "-o", str(out), "--recommend", "3")
    assert result.returncode == 2
    assert "not a scored table" in result.stderr
    assert cli(*common, "--recommend", "-1").returncode == 2


# ---------------------------------------------------------------------------------------------
# the loop's targets-D.csv


def test_loop_target_list_carries_recommendations(tmp_path: Path) -> None:
    pytest.importorskip("sqlalchemy")
    from tests.loop.conftest import config, transactions
    from winback.loop.pipeline import TARGET_FILE_COLUMNS, Pipeline

    tx = _products(transactions(n=120))
    sales = tmp_path / "sales.parquet"
    tx.write_parquet(sales)
    raw = config(tmp_path, sales)
    plain = Pipeline(raw).run("2024-03-01")
    targets_plain = pl.read_csv(
        next(f for f in plain.files if f.name.startswith("targets-")), infer_schema=False
    )
    assert tuple(targets_plain.columns) == TARGET_FILE_COLUMNS  # unchanged without [recommend]

    raw2 = config(tmp_path / "with", sales)
    raw2["recommend"] = {"enabled": True, "n": 2}
    (tmp_path / "with").mkdir()
    result = Pipeline(raw2).run(date(2024, 3, 1))
    path = next(f for f in result.files if f.name.startswith("targets-"))
    targets = pl.read_csv(path, infer_schema=False)
    assert tuple(targets.columns) == (*TARGET_FILE_COLUMNS, "recommended_products")
    assert targets.drop("recommended_products").equals(targets_plain)
    assert targets.height > 10
    want = {
        str(c): "|".join(str(p) for p in ps)
        for c, ps in winback.recommend(tx, n=2)
        .select("customer_id", "recommended_products")
        .iter_rows()
    }
    for customer, cell in targets.select("customer_id", "recommended_products").rows():
        assert cell == want[customer]
