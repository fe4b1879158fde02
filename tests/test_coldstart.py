"""Cold-start silence (docs/methods.md#cold-start): the Kaplan–Meier estimator against a slow
reference, the columns on hand-made and random logs, and every CDNOW customer scored once."""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

import winback
from winback import coldstart
from winback.coldstart import COLD_START_COLUMNS, kaplan_meier
from winback.datasets import load_cdnow
from winback.silence import SILENCE_COLUMNS

from .conftest import START, transaction_logs

AS_OF = "1998-06-30"


def reference_survival(durations: list[float], observed: list[bool], t: float) -> float:
    """Kaplan–Meier by its definition: a loop over the distinct event times up to t."""
    s = 1.0
    for time in sorted({d for d, e in zip(durations, observed, strict=True) if e}):
        if time > t:
            break
        at_risk = sum(1 for d in durations if d >= time)
        events = sum(1 for d, e in zip(durations, observed, strict=True) if e and d == time)
        s *= 1.0 - events / at_risk
    return s


samples = st.integers(0, 40).flatmap(
    lambda n: st.tuples(
        st.lists(st.integers(0, 30).map(float), min_size=n, max_size=n),
        st.lists(st.booleans(), min_size=n, max_size=n),
    )
)


@given(samples, st.randoms(use_true_random=False))
def test_kaplan_meier_matches_the_slow_reference_with_censoring(
    sample: tuple[list[float], list[bool]], rnd: object
) -> None:
    durations, observed = sample
    km = kaplan_meier(durations, observed)
    queries = np.arange(-1.0, 33.0, 0.5)
    got = km.survival_at(queries)
    for q, value in zip(queries, got, strict=True):
        assert value == pytest.approx(reference_survival(durations, observed, q), abs=1e-12)
    assert np.isfinite(got).all()
    assert ((got >= 0) & (got <= 1)).all()
    # The subjects' order does not matter, bit for bit.
    order = list(range(len(durations)))
    rnd.shuffle(order)  # type: ignore[attr-defined]
    again = kaplan_meier([durations[i] for i in order], [observed[i] for i in order])
    assert np.array_equal(again.survival_at(queries), got)


def test_kaplan_meier_refuses_bad_durations() -> None:
    with pytest.raises(winback.WinbackConfigError, match="durations"):
        kaplan_meier([1.0, math.nan], [True, False])
    with pytest.raises(winback.WinbackConfigError, match="durations"):
        kaplan_meier([-1.0], [True])


def hand_log() -> pl.DataFrame:
    start = date(2024, 1, 1)
    rows = [("A", 0), ("A", 10), ("B", 0), ("B", 20), ("B", 25), ("C", 0), ("D", 15)]
    return pl.DataFrame(
        {
            "customer_id": [c for c, _ in rows],
            "ts": [start + timedelta(days=d) for _, d in rows],
            "amount": [1.0] * len(rows),
        }
    )


def test_hand_made_log() -> None:
    """Time to a second purchase: A 10 and B 20 observed, C censored at 30 and D at 15, so
    Ŝ = 0.75 after 10 and 0.375 after 20; F̂ at the last event is 0.625."""
    out = winback.silence(
        hand_log(), as_of=date(2024, 1, 31), cold_start=True, cold_start_horizon_days=10
    )
    rows = {r["customer_id"]: r for r in out.iter_rows(named=True)}
    for scored in ("A", "B"):
        assert all(rows[scored][c] is None for c in COLD_START_COLUMNS)
    d = rows["D"]
    assert d["recency_days"] == 15.0
    assert d["p_next_so_far"] == pytest.approx(0.25)
    assert d["population_trf"] == pytest.approx(0.25 / 0.625)
    assert d["population_trf_group"] == "b"  # 0.4 is group b's lower bound
    assert d["p_next_within"] == pytest.approx((0.75 - 0.375) / 0.75)
    assert d["cold_start_extrapolated"] is False
    c = rows["C"]
    assert c["p_next_so_far"] == pytest.approx(0.625)
    assert c["population_trf"] == 1.0
    assert c["population_trf_group"] == "e"
    # Beyond the last follow-up (30 days) Ŝ is held: no further purchase is assumed.
    assert c["p_next_within"] == 0.0
    assert c["cold_start_extrapolated"] is True


def test_below_min_occasions_use_the_next_occasion_curve() -> None:
    """With min_occasions=3, a two-occasion customer is measured against the time from a
    second occasion to a third (B: 5 days observed; A censored at its recency 20)."""
    out = winback.silence(hand_log(), as_of=date(2024, 1, 31), min_occasions=3, cold_start=True)
    rows = {r["customer_id"]: r for r in out.iter_rows(named=True)}
    assert rows["A"]["status"] == "below_min_occasions"
    assert rows["A"]["p_next_so_far"] == pytest.approx(0.5)  # B's 5-day gap; A at risk at 20
    assert rows["A"]["population_trf"] == 1.0
    assert rows["B"]["status"] == "scored"
    assert rows["B"]["population_trf"] is None
    # One-purchase customers still use the time to the second purchase (A 10, B 20).
    assert rows["D"]["p_next_so_far"] == pytest.approx(0.25)


def test_no_customers_and_only_scored_customers() -> None:
    empty = pl.DataFrame(
        {"customer_id": [], "ts": [], "amount": []},
        schema={"customer_id": pl.Int64, "ts": pl.Datetime("us"), "amount": pl.Float64},
    )
    out = winback.silence(empty, as_of=date(2024, 1, 1), cold_start=True)
    assert out.columns == [*SILENCE_COLUMNS, *COLD_START_COLUMNS]
    assert out.height == 0
    two = hand_log().filter(pl.col("customer_id") == "A")
    out = winback.silence(two, as_of=date(2024, 1, 31), cold_start=True)
    assert out.select(COLD_START_COLUMNS).null_count().row(0) == (1,) * len(COLD_START_COLUMNS)


def test_only_one_purchase_customers_have_no_reference() -> None:
    """Nobody has a second purchase: F̂ is 0, population_trf is null (no repeaters to rank
    against), p_next_within 0 and extrapolated."""
    log = hand_log().filter(pl.col("customer_id").is_in(["C", "D"]))
    out = winback.silence(log, as_of=date(2024, 1, 31), cold_start=True)
    assert out.get_column("population_trf").null_count() == 2
    assert out.get_column("population_trf_group").null_count() == 2
    assert out.get_column("p_next_so_far").to_list() == [0.0, 0.0]
    assert out.get_column("p_next_within").to_list() == [0.0, 0.0]


@given(transaction_logs(), st.integers(1, 4), st.floats(0.5, 400.0))
def test_random_logs_finite_in_range_and_order_free(
    tx: pl.DataFrame, min_occasions: int, horizon: float
) -> None:
    as_of = datetime(2023, 2, 15)
    kwargs = {"as_of": as_of, "min_occasions": min_occasions, "cold_start_horizon_days": horizon}
    out = winback.silence(tx, cold_start=True, **kwargs)
    plain = winback.silence(tx, as_of=as_of, min_occasions=min_occasions)
    assert out.select(SILENCE_COLUMNS).equals(plain)  # existing columns untouched
    cold = pl.col("n_occasions") < min_occasions
    assert out.filter(cold).get_column("p_next_so_far").null_count() == 0
    assert out.filter(cold).get_column("p_next_within").null_count() == 0
    assert out.filter(~cold).select(COLD_START_COLUMNS).null_count().row(0) == (
        out.filter(~cold).height,
    ) * len(COLD_START_COLUMNS)
    for name in ("population_trf", "p_next_so_far", "p_next_within"):
        values = out.get_column(name).drop_nulls().to_numpy()
        assert np.isfinite(values).all(), name
        assert ((values >= 0) & (values <= 1)).all(), name
    shuffled = tx.sample(fraction=1.0, shuffle=True, seed=3)
    assert winback.silence(shuffled, cold_start=True, num_threads=1, **kwargs).equals(out)


@pytest.fixture(scope="module")
def cdnow() -> pl.DataFrame:
    return load_cdnow()


@pytest.fixture(scope="module")
def cdnow_cold(cdnow: pl.DataFrame) -> pl.DataFrame:
    return winback.silence(cdnow, as_of=AS_OF, cold_start=True)


def test_cdnow_every_one_purchase_customer_scored(
    cdnow: pl.DataFrame, cdnow_cold: pl.DataFrame
) -> None:
    out = cdnow_cold
    assert out.height == 23_570 == cdnow.get_column("customer_id").n_unique()
    assert out.get_column("customer_id").is_unique().all()
    assert set(out.get_column("customer_id")) == set(cdnow.get_column("customer_id"))
    single = out.filter(pl.col("status") == "single_purchase")
    assert single.height == 12_054
    assert single.select(COLD_START_COLUMNS).null_count().row(0) == (0,) * len(COLD_START_COLUMNS)
    scored = out.filter(pl.col("status") == "scored")
    assert scored.height == 11_516
    assert scored.select(COLD_START_COLUMNS).null_count().row(0) == (11_516,) * len(
        COLD_START_COLUMNS
    )
    # The existing columns keep their bits; only the cold-start columns are added.
    assert out.select(SILENCE_COLUMNS).equals(winback.silence(cdnow, as_of=AS_OF))
    # CDNOW is one cohort (first purchases in 1997 Q1) seen for 15–18 months: about 49% have
    # come back, and a one-purchase customer is near the end of the repeaters' times.
    assert single.get_column("p_next_so_far").is_between(0.48, 0.50).all()
    assert single.get_column("p_next_within").is_between(0.0, 0.02).all()


def test_cdnow_input_form_and_order_do_not_matter(
    cdnow: pl.DataFrame, cdnow_cold: pl.DataFrame
) -> None:
    shuffled = cdnow.sample(fraction=1.0, shuffle=True, seed=11)
    assert winback.silence(shuffled, as_of=AS_OF, cold_start=True, num_threads=1).equals(cdnow_cold)
    reader = pa.RecordBatchReader.from_batches(
        cdnow.to_arrow().schema, cdnow.to_arrow().to_batches(max_chunksize=5_000)
    )
    assert winback.silence(reader, as_of=AS_OF, cold_start=True).equals(cdnow_cold)
    prepared = winback.prepare(cdnow)
    assert winback.silence(prepared, as_of=AS_OF, cold_start=True).equals(cdnow_cold)


def test_cdnow_out_of_core_is_identical(cdnow: pl.DataFrame, cdnow_cold: pl.DataFrame) -> None:
    """Scored a part at a time (spill files by customer), the population-wide curves are built
    once all parts are in: the same bits as in memory."""
    calls: list[tuple[object, ...]] = []
    parts = winback.silence(
        cdnow, as_of=AS_OF, cold_start=True, memory_limit="2MB", progress=lambda *a: calls.append(a)
    )
    assert sum(1 for c in calls if c[0] == "scoring") > 1  # really in parts
    assert parts.equals(cdnow_cold)


@given(transaction_logs(), st.integers(1, 3))
def test_random_logs_out_of_core_is_identical(tx: pl.DataFrame, min_occasions: int) -> None:
    kwargs = {"as_of": datetime(2023, 2, 15), "min_occasions": min_occasions, "cold_start": True}
    memory = winback.silence(tx, **kwargs)
    parts = winback.silence(tx, memory_limit="1MB", **kwargs)
    if memory.height:
        assert parts.equals(memory)


def test_cdnow_campaign_lists_each_customer_at_most_once(cdnow_cold: pl.DataFrame) -> None:
    """The target list is a selection: no customer twice, none unknown. (The default rule
    selects by TrF group and S, so one-purchase customers are not targeted yet: see
    docs/methods.md#cold-start.)"""
    targets = winback.campaign(cdnow_cold, campaign_id="c1")
    ids = targets.get_column("customer_id")
    assert ids.is_unique().all()
    assert set(ids) <= set(cdnow_cold.get_column("customer_id"))


def test_refusals() -> None:
    with pytest.raises(winback.WinbackConfigError, match="cold_start_horizon_days"):
        winback.silence(hand_log(), cold_start=True, cold_start_horizon_days=0)
    with pytest.raises(winback.WinbackConfigError, match="cold_start_horizon_days"):
        winback.silence(hand_log(), cold_start=True, cold_start_horizon_days=math.inf)


def test_first_occasions_agree_with_the_kernel(cdnow: pl.DataFrame) -> None:
    """The occasion dates this module reads (bucket starts up to as_of) are the kernel's."""
    prepared = winback.prepare(cdnow)
    scores = winback.silence(prepared, as_of=AS_OF)
    from winback import _io

    as_of_us = _io.snapshot_end(prepared, AS_OF)
    day = 86_400_000_000
    first = coldstart._first_occasions(prepared, as_of_us, day, 10**9)
    counts = first.group_by("customer").agg(pl.len().alias("n"), pl.col("t").min().alias("t1"))
    joined = scores.join(counts, left_on="customer_id", right_on="customer")
    assert joined.height == scores.height
    assert (joined.get_column("n") == joined.get_column("n_occasions")).all()
    firsts = (joined.get_column("t1") // day).cast(pl.Int32).cast(pl.Date)
    assert (firsts == joined.get_column("first_ts")).all()


def second_purchase(
    data: object, as_of: str = AS_OF, **kwargs: object
) -> coldstart.SecondPurchaseModel:
    pytest.importorskip("sklearn")
    from winback import _io

    prepared = data if isinstance(data, winback.PreparedTransactions) else winback.prepare(data)
    as_of_us = _io.snapshot_end(prepared, as_of)
    return coldstart.second_purchase_model(
        prepared, as_of_us=as_of_us, resolution_us=86_400_000_000, **kwargs
    )


@pytest.fixture(scope="module")
def cdnow_model(cdnow: pl.DataFrame) -> coldstart.SecondPurchaseModel:
    return second_purchase(cdnow)


def test_cdnow_second_purchase_model(cdnow_model: coldstart.SecondPurchaseModel) -> None:
    """Every customer is first seen ≥ 90 days before as_of, so all 23,570 train; 29.2% came
    back within 90 days. The first purchase's amount, rows and weekday rank better than the
    base rate (out-of-fold AUC 0.566, Brier 0.2043 against 0.2068) and are calibrated."""
    m = cdnow_model
    assert m.customers_trained == 23_570
    assert m.base_rate == pytest.approx(0.2922, abs=1e-4)
    assert 0.55 < m.auc < 0.60
    assert m.brier < m.brier_base
    frame = m.frame
    assert frame.height == 23_570
    assert frame.get_column("customer_id").is_unique().all()
    for name in ("p_second_within", "p_second_within_oof"):
        values = frame.get_column(name).to_numpy()
        assert np.isfinite(values).all()
        assert ((values > 0) & (values < 1)).all()
    # Reliability: within ±3 points in every decile of the out-of-fold probability.
    deciles = (
        frame.with_columns(pl.col("p_second_within_oof").rank("ordinal").alias("r"))
        .with_columns(((pl.col("r") - 1) * 10 // pl.len()).alias("decile"))
        .group_by("decile")
        .agg(pl.col("p_second_within_oof").mean().alias("p"), pl.col("second_within").mean())
    )
    gap = (deciles.get_column("p") - deciles.get_column("second_within")).abs().max()
    assert gap < 0.03


def test_second_purchase_model_with_user_features_and_any_order(
    cdnow: pl.DataFrame, cdnow_model: coldstart.SecondPurchaseModel
) -> None:
    """A per-customer feature table (here CDNOW's first-day quantity, and a text column) is
    joined; the result does not depend on the input's row order."""
    first_day = cdnow.with_columns(pl.col("ts").cast(pl.Date).alias("day"))
    features = (
        first_day.filter(pl.col("day") == pl.col("day").min().over("customer_id"))
        .group_by("customer_id")
        .agg(pl.col("quantity").sum().cast(pl.Float64).log1p().alias("log_quantity"))
        .with_columns(
            pl.when(pl.col("log_quantity") > 1)
            .then(pl.lit("many"))
            .otherwise(pl.lit("few"))
            .alias("basket")
        )
    )
    m = second_purchase(cdnow.sample(fraction=1.0, shuffle=True, seed=5), features=features)
    assert m.features[2] == "log_quantity"  # numbers first, then one-hot levels
    assert m.features[-2:] == ("basket=few", "basket=many")
    assert m.auc > cdnow_model.auc - 0.01
    again = second_purchase(cdnow, features=features.reverse())
    assert again.frame.equals(m.frame)
    assert again.auc == m.auc


def test_second_purchase_model_refusals() -> None:
    tx = hand_log()
    with pytest.raises(winback.WinbackFitError, match="at least 5 customers"):
        second_purchase(tx, as_of="2024-01-31", horizon_days=5)
    big = load_cdnow()
    bad = pl.DataFrame({"customer_id": [1, 1], "x": [1.0, 2.0]})
    with pytest.raises(winback.WinbackInputError, match="more than once"):
        second_purchase(big, features=bad)
    with pytest.raises(winback.WinbackInputError, match="missing, NaN or infinite"):
        second_purchase(big, features=pl.DataFrame({"customer_id": [1], "x": [1.0]}))
    with pytest.raises(winback.WinbackInputError, match="no 'customer_id'"):
        second_purchase(big, features=pl.DataFrame({"id": [1]}))
    with pytest.raises(winback.WinbackConfigError, match="folds"):
        second_purchase(big, folds=1)


COLD_START_RULE = """
format = 1
name = "with_cold_start"
description = "The default selection plus one-purchase customers late against the population."

[thresholds]
min_s = 1.0

[[classifier]]
column = "segment"
description = "Why the customer is targeted."
inputs = ["rank_ratio_group", "silence_score", "population_trf_group"]
default = "none"
rules = [
  { label = "group_e", when = { rank_ratio_group = { eq = "e" } } },
  { label = "group_d", when = { rank_ratio_group = { eq = "d" } } },
  { label = "silent", when = { silence_score = { ge = "$min_s" } } },
  { label = "cold_start_e", when = { population_trf_group = { eq = "e" } } },
]

[campaign]
segment = "segment"
exclude = ["none"]
cadence = { group_e = 1, group_d = 3, silent = 7, cold_start_e = 14 }
"""


def test_cdnow_campaign_can_target_every_one_purchase_customer_once(
    cdnow_cold: pl.DataFrame, tmp_path: Path
) -> None:
    """A rules file that reads ``population_trf_group`` puts the one-purchase customers on the
    list (after the scored ones: their TrF group and S are null), each exactly once."""
    rule = tmp_path / "cold.toml"
    rule.write_text(COLD_START_RULE)
    targets = winback.campaign(cdnow_cold, campaign_id="c1", rule=rule, staff=["ann", "bo"])
    assert targets.get_column("customer_id").is_unique().all()
    counts = dict(targets.get_column("segment").value_counts().iter_rows())
    assert counts == {"group_e": 5_714, "group_d": 781, "cold_start_e": 12_054}
    single = cdnow_cold.filter(pl.col("status") == "single_purchase").get_column("customer_id")
    cold = targets.filter(pl.col("segment") == "cold_start_e")
    assert set(cold.get_column("customer_id")) == set(single)
    assert cold.get_column("priority").min() == 5_714 + 781 + 1


def _first_occasions_by_sort(
    prepared: winback.PreparedTransactions, as_of_us: int, resolution_us: int, count: int
) -> pl.DataFrame:
    """The slow reference: the sort-based original of ``coldstart._first_occasions`` (all rows
    sorted by (customer, t), occasions numbered and gaps taken by shifts)."""
    ts = pl.col("ts")
    customer = pl.col("customer")
    index = pl.col("i")
    first_row = (customer != customer.shift(1)).fill_null(True)
    same_next = (customer.shift(-1) == customer).fill_null(False)
    return (
        prepared.frame.lazy()
        .filter(ts <= as_of_us)
        .select(customer, (ts - ts % resolution_us).alias("t"))
        .sort("customer", "t")
        .filter(first_row | (pl.col("t") != pl.col("t").shift(1)).fill_null(True))
        .with_row_index("i")
        .with_columns(
            (index - pl.when(first_row).then(index).forward_fill() + 1).cast(pl.Int64).alias("k"),
            pl.when(same_next)
            .then((pl.col("t").shift(-1) - pl.col("t")) / 86_400_000_000)
            .alias("gap_days"),
        )
        .filter(pl.col("k") <= count)
        .select("customer", "k", "t", "gap_days")
        .collect()
    )


@given(
    transaction_logs(),
    st.integers(1, 4),
    st.sampled_from([86_400_000_000, 43_200_000_000, 3_600_000_000]),
    st.integers(0, 45),
    st.randoms(use_true_random=False),
)
def test_first_occasions_match_the_sort_reference(
    tx: pl.DataFrame, count: int, resolution_us: int, as_of_day: int, rng: object
) -> None:
    """One pass per customer (sorted by customer only) gives the same frame as sorting every
    row by (customer, t) — for any row order, ties, same-bucket rows, as_of: customers, k and
    t bit for bit, gaps the correctly rounded division (within one ulp of the reference's)."""
    shuffled = tx.sample(fraction=1.0, shuffle=True, seed=rng.randrange(1 << 30))  # type: ignore[attr-defined]
    prepared = winback.prepare(shuffled)
    as_of_us = (
        int((START - datetime(1970, 1, 1)).total_seconds() * 1_000_000) + as_of_day * 86_400_000_000
    )
    expected = _first_occasions_by_sort(prepared, as_of_us, resolution_us, count)
    got = coldstart._first_occasions(prepared, as_of_us, resolution_us, count)
    assert got.schema == expected.schema
    assert got.drop("gap_days").equals(expected.drop("gap_days"))
    gap, ref = (f.get_column("gap_days") for f in (got, expected))
    assert gap.is_null().equals(ref.is_null())
    # Days are a NumPy division, correctly rounded; Polars' division by the scalar in the
    # reference is off by one ulp in some rows (it multiplies by the reciprocal in its vector
    # loop): e.g. 82,800 s / 86,400 s gives 0.9583333333333334 and, in another row, …333.
    present = gap.is_not_null().to_numpy()
    np.testing.assert_array_max_ulp(gap.to_numpy()[present], ref.to_numpy()[present], maxulp=1)
