"""winback.value (docs/methods.md#value): the panel kernel, the margin and expense rules, forecasts,
real data."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

import winback
from winback import _winback
from winback.datasets import load_cdnow
from winback.errors import WinbackConfigError, WinbackInputError
from winback.summary import period_edges
from winback.value import VALUE_COLUMNS
from winback.value.margins import expected_expenses, next_margins
from winback.value.panel import customer_aggregates
from winback.value.tiers import tier_labels

DAY = 86_400_000_000


# -- panel kernel vs a slow oracle -------------------------------------------------------------
def _oracle_panel(rows: list[tuple[int, int, float]], edges: list[int], max_us: int) -> list:
    by_customer: dict[int, list[tuple[int, float]]] = {}
    for c, t, a in rows:
        if t <= max_us:
            by_customer.setdefault(c, []).append((t - t % DAY, a))
    out = []
    for c in sorted(by_customer):
        occasions: list[tuple[int, float]] = []
        for t, a in sorted(by_customer[c]):
            if occasions and occasions[-1][0] == t:
                occasions[-1] = (t, occasions[-1][1] + a)
            else:
                occasions.append((t, a))
        periods: dict[int, list[float]] = {}
        for day, amount in occasions:
            k = max(sum(1 for e in edges if e <= day) - 1, 0)
            row = periods.setdefault(k, [0, 0, 0.0, 0.0])
            row[0] += 1
            row[2] += amount
            if amount > 0:
                row[1] += 1
                row[3] += amount
        out += [(c, k, *v) for k, v in sorted(periods.items())]
    return out


@given(
    rows=st.lists(
        st.tuples(
            st.integers(0, 5),
            st.integers(0, 120 * DAY),
            st.integers(-8, 40).map(lambda a: a / 4),
        ),
        max_size=60,
    ),
    period=st.sampled_from(["month", "week", "10d"]),
    end_day=st.integers(1, 130),
)
@example(rows=[], period="month", end_day=5)
@example(rows=[(1, 0, 1.0), (1, 3, 2.0), (1, 40 * DAY, -1.0)], period="month", end_day=59)
def test_panel_matches_oracle(rows: list, period: str, end_day: int) -> None:
    max_us = end_day * DAY - 1
    edges = period_edges(period, 0, max_us + 1) or [0]
    frame = pl.DataFrame(
        rows,
        schema={"customer": pl.Int64, "ts": pl.Int64, "amount": pl.Float64},
        orient="row",
    )
    customers, table, excluded = _winback.panel(
        frame, max_time_us=max_us, resolution_us=DAY, period_edges_us=edges
    )
    ids = pl.DataFrame(customers).get_column("customer_id")
    out = pl.DataFrame(table)
    got = [(ids[i], k, x, xp, rev, prev) for i, k, x, xp, rev, prev in out.iter_rows()]
    assert got == [tuple(r) for r in _oracle_panel(rows, edges, max_us)]
    assert excluded == sum(1 for r in rows if r[1] > max_us)


# -- the rules, by hand ----------------------------------------------------------------------------
def _panel(rows: list[tuple]) -> pl.DataFrame:
    frame = pl.DataFrame(
        rows,
        schema=["customer_id", "period", "occasions", "revenue", "cost", "expense"],
        orient="row",
    )
    return frame.with_columns(
        pl.col("occasions").alias("positive_occasions"),
        pl.col("revenue").clip(lower_bound=0).alias("positive_revenue"),
        pl.when(pl.col("occasions") > 0)
        .then(pl.col("revenue") / pl.col("occasions"))
        .alias("_mean"),
    )


def test_hand_computed_margins() -> None:
    # Four complete periods 0..3 (the last complete one is 3).
    panel = _panel(
        [
            # A: margins 0.40, 0.45, 0.50 in periods 0, 1, 2; silent in period 3, so r = 1.
            ("A", 0, 1, 100.0, 60.0, 0.0),
            ("A", 1, 1, 100.0, 55.0, 0.0),
            ("A", 2, 1, 200.0, 100.0, 0.0),
            # B: bought in the last complete period (r = 0): margin (50 − 30)/50 = 0.4 as is.
            ("B", 3, 1, 50.0, 30.0, 0.0),
            # C: one active period (margin 0.3, period 1, r = 2): uses the segment's slope.
            ("C", 1, 1, 100.0, 70.0, 0.0),
            # D: only a refund: no margin of its own.
            ("D", 2, 1, -10.0, 0.0, 0.0),
        ]
    )
    c = customer_aggregates(panel, 4, [1, 2, 3, 5], [50.0]).sort("customer_id")
    segments = np.zeros(4, dtype=np.int64)
    margins, basis = next_margins(c, segments, 1, 4, has_cost=True, margin=None)
    # A: OLS slope of (0, .40), (1, .45), (2, .50) is 0.05; Δ = 0.05 · 1 / 2 = 0.025;
    #    next = clamp(0.50 · 1.025, 0, 1) = 0.5125.
    assert margins[0] == pytest.approx(0.5125, abs=1e-12)
    # B: r = 0 → last margin.
    assert margins[1] == pytest.approx(0.4, abs=1e-12)
    # C: segment slope (pooled within-customer OLS, A only): Σkm − ΣkΣm/n = 1.45 − 3·1.35/3
    #    = 0.10, Σk² − (Σk)²/n = 5 − 3 = 2 → 0.05; next = 0.3 · (1 + 0.05 · 2/2) = 0.315.
    assert margins[2] == pytest.approx(0.315, abs=1e-12)
    # D: no positive revenue: the segment's revenue-weighted margin
    #    (Σrev − Σcost)/Σrev over A, B, C = (550 − 315)/550.
    assert margins[3] == pytest.approx(235 / 550, abs=1e-12)
    assert basis == ["cost", "cost", "cost", "segment"]
    # With margin= given, it is D's fall-back; without cost data it is everyone's margin.
    margins, basis = next_margins(c, segments, 1, 4, has_cost=True, margin=0.2)
    assert margins[3] == 0.2
    assert basis[3] == "margin_argument"
    margins, basis = next_margins(c, segments, 1, 4, has_cost=False, margin=0.25)
    assert list(margins) == [0.25] * 4
    margins, basis = next_margins(c, segments, 1, 4, has_cost=False, margin=None)
    assert list(margins) == [1.0] * 4
    assert basis == ["no_cost_data"] * 4


def test_hand_computed_expense_rule() -> None:
    # E1–E3: revenue 1000 and expenses 20 and 30 in two periods: Rate = 50/1000 = 0.05,
    # Floor = 20. E4 has no expense (segment 0's Rate and Floor); E5 is alone in segment 1
    # with no expense (the population's).
    rows = []
    for name in ("E1", "E2", "E3"):
        rows += [(name, 0, 1, 600.0, 0.0, 20.0), (name, 1, 1, 400.0, 0.0, 30.0)]
    rows += [("E4", 0, 1, 500.0, 0.0, 0.0), ("E5", 0, 1, 500.0, 0.0, 0.0)]
    c = customer_aggregates(_panel(rows), 2, [1, 2, 3, 5], [50.0]).sort("customer_id")
    amount = np.array([800.0, 100.0, 10.0, 600.0, 4.0])
    segments = np.array([0, 0, 0, 0, 1], dtype=np.int64)
    out, basis = expected_expenses(c, amount, segments, 2, has_expenses=True)
    # E1: X = 800 · 0.05 = 40 > Floor 20 → 40 (proportional).
    # E2: X = 5 ≤ 20 and the amount 100 ≥ 20 → the Floor, 20.
    # E3: X = 0.5 ≤ 20 but the amount 10 < 20 → X = 0.5.
    # E4: segment 0: Rate = 150/3000 = 0.05, Floor = 20; X = 30 > 20 → 30.
    # E5: segment 1 has nobody with expenses → population Rate 0.05, Floor 20; X = 0.2, amount
    #     4 < 20 → 0.2.
    np.testing.assert_allclose(out, [40.0, 20.0, 0.5, 30.0, 0.2], rtol=1e-12)
    assert basis == ["own", "own", "own", "segment", "population"]
    out, basis = expected_expenses(c, amount, segments, 2, has_expenses=False)
    assert list(out) == [0.0] * 5
    assert basis == ["no_expense_data"] * 5


def test_tiers_by_share_with_negatives_apart() -> None:
    values = np.array([10.0, 9.0, 8.0, 7.0, 6.0, 5.0, 4.0, 3.0, 2.0, 1.0, -1.0, np.nan])
    labels = tier_labels(values, {"platinum": 0.1, "gold": 0.2, "silver": 0.3})
    # 10 non-negative customers: rank 1 → platinum, 2–3 gold, 4–6 silver, the rest bronze.
    assert labels == [
        "platinum",
        "gold",
        "gold",
        "silver",
        "silver",
        "silver",
        "bronze",
        "bronze",
        "bronze",
        "bronze",
        "negative",
        None,
    ]


# -- end to end on CDNOW ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cdnow() -> pl.DataFrame:
    return load_cdnow().select("customer_id", "ts", "amount")


@pytest.fixture(scope="module")
def cdnow_value(cdnow: pl.DataFrame) -> winback.ValueResult:
    late = pl.DataFrame(
        {"customer_id": [999_001], "ts": [datetime(1998, 6, 10)], "amount": [12.0]},
        schema=cdnow.schema,
    )
    tx = pl.concat([cdnow, late]).with_columns((pl.col("amount") * 0.6).alias("cost"))
    ids = cdnow.get_column("customer_id").unique().sort().head(3000)
    expenses = (
        cdnow.filter(pl.col("customer_id").is_in(ids.implode()))
        .select("customer_id", "ts", (pl.col("amount") * 0.1).alias("expense"))
        .head(4000)
    )
    return winback.value(tx, as_of="1998-06-20", expenses=expenses)


def test_cdnow_end_to_end(cdnow: pl.DataFrame, cdnow_value: winback.ValueResult) -> None:
    frame = cdnow_value.frame
    assert frame.columns == list(VALUE_COLUMNS)
    n = cdnow.get_column("customer_id").n_unique() + 1
    assert frame.height == n
    assert frame.get_column("customer_id").n_unique() == n
    late = frame.filter(pl.col("customer_id") == 999_001).row(0, named=True)
    assert late["status"] == "not_modelled"
    assert "incomplete" in late["reason"]
    assert late["value_to_date"] == pytest.approx(12.0 * 0.4)
    modelled = frame.filter(pl.col("status") == "modelled")
    assert modelled.height == n - 1
    assert modelled.select(pl.all().exclude("reason").null_count()).sum_horizontal().item() == 0
    margins = modelled.get_column("next_margin").to_numpy()
    np.testing.assert_allclose(margins, 0.4, rtol=0, atol=1e-9)
    assert set(modelled.get_column("expense_basis")) <= {"own", "segment", "population"}
    assert set(modelled.get_column("margin_basis")) <= {"cost", "segment"}  # zero-amount buyers
    check = modelled.select(
        (
            pl.col("expected_value")
            - (pl.col("expected_amount") - pl.col("expected_cost") - pl.col("expected_expense"))
        )
        .abs()
        .max()
        .alias("identity"),
        (pl.col("negative_value") == (pl.col("expected_value") < 0)).all().alias("flag"),
        (pl.col("p_frequency").arr.sum() <= 1 + 1e-12).all().alias("pmf"),
        (pl.col("expected_amount") - pl.col("expected_frequency") * pl.col("expected_mean_amount"))
        .abs()
        .max()
        .alias("amount"),
    ).row(0, named=True)
    assert check["identity"] < 1e-9
    assert check["amount"] < 1e-9
    assert check["flag"]
    assert check["pmf"]
    # Tier shares are of the customers with a non-negative value.
    shares = (
        modelled.filter(~pl.col("negative_value"))
        .get_column("value_tier")
        .value_counts(normalize=True)
    )
    platinum = shares.filter(pl.col("value_tier") == "platinum").get_column("proportion").item()
    assert 0.04 < platinum < 0.07
    # The NBD on the monthly panel of CDNOW.
    assert cdnow_value.nbd is not None
    assert cdnow_value.nbd.params_["r"] > 0
    assert cdnow_value.info.n_complete_periods == 17  # Jan 1997 … May 1998


def test_expected_amount_matches_monte_carlo(cdnow_value: winback.ValueResult) -> None:
    nbd, gg = cdnow_value.nbd, cdnow_value.gamma_gamma
    assert nbd is not None
    assert gg is not None
    frame = cdnow_value.frame.filter(pl.col("status") == "modelled")
    rng = np.random.default_rng(20240601)
    r, alpha = nbd.params_["r"], nbd.params_["alpha"]
    p, q, gamma = gg.params_["p"], gg.params_["q"], gg.params_["gamma"]
    for row in frame.sort("expected_amount", descending=True).head(3).iter_rows(named=True):
        cid = row["customer_id"]
        x_total = row["period_frequency"]
        t = row["n_periods"]
        # Spend statistics as the engine used them: recover Q, G from E[M] and the model.
        draws = 400_000
        lam = rng.gamma(r + x_total, 1.0 / (alpha + t), draws)
        counts = rng.poisson(lam)
        mean_spend = row["expected_mean_amount"]
        # Q and G of this customer: E[M] = p G / (Q − 1); with x_gg, z̄ from the panel.
        stats = _customer_spend(cdnow_value, cid)
        Q, G = q + p * stats[0], gamma + stats[0] * stats[1]
        assert p * G / (Q - 1) == pytest.approx(mean_spend, rel=1e-12)
        nu = rng.gamma(Q, 1.0 / G, draws)
        amount = np.where(counts > 0, rng.gamma(np.maximum(p * counts, 1e-300), 1.0 / nu), 0.0)
        se = amount.std() / np.sqrt(draws)
        assert abs(amount.mean() - row["expected_amount"]) < 3 * se, (cid, amount.mean(), se)


def _customer_spend(result: winback.ValueResult, cid: int) -> tuple[float, float]:
    gg = result.gamma_gamma
    assert gg is not None
    fit = gg._fit_frame.filter(pl.col("customer_id") == cid).row(0, named=True)
    x = float(fit["spend_frequency"]) if fit["monetary_value"] > 0 else 0.0
    return x, float(fit["monetary_value"])


def test_row_order_does_not_change_the_result(cdnow: pl.DataFrame) -> None:
    ids = cdnow.get_column("customer_id").unique().sort().head(4000)
    tx = cdnow.filter(pl.col("customer_id").is_in(ids.implode()))
    a = winback.value(tx, as_of=date(1998, 6, 30)).frame
    b = winback.value(tx.sample(fraction=1.0, shuffle=True, seed=7), as_of=date(1998, 6, 30))
    assert_frame_equal(a, b.frame)


def test_bad_arguments_are_config_errors(cdnow: pl.DataFrame) -> None:
    with pytest.raises(WinbackConfigError, match="horizon"):
        winback.value(cdnow, horizon=0)
    with pytest.raises(WinbackConfigError, match="kappa"):
        winback.value(cdnow, kappa=-1.0)
    with pytest.raises(WinbackConfigError, match="frequency_buckets"):
        winback.value(cdnow, frequency_buckets=[2, 3])
    with pytest.raises(WinbackConfigError, match="period"):
        winback.value(cdnow, period="fortnight")
    with pytest.raises(WinbackInputError, match="amount"):
        winback.value(cdnow.drop("amount"))


def test_empty_input_gives_the_full_schema() -> None:
    empty = pl.DataFrame(
        schema={"customer_id": pl.Int64, "ts": pl.Datetime("us"), "amount": pl.Float64}
    )
    result = winback.value(empty)
    assert result.frame.columns == list(VALUE_COLUMNS)
    assert result.frame.height == 0
    assert result.chain is None


def test_docstring_example() -> None:
    import doctest
    import importlib

    module = importlib.import_module("winback.value.api")
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0
    assert result.failed == 0


def test_value_is_identical_for_any_thread_count_row_order_and_id_type(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from winback.datasets import load_cdnow

    tx = load_cdnow().filter(pl.col("customer_id") <= 3000)
    frames = []
    for threads in ("1", "2"):
        monkeypatch.setenv("WINBACK_NUM_THREADS", threads)
        frames.append(winback.value(tx, as_of="1998-06-30").frame)
    assert frames[0].equals(frames[1])
    shuffled = tx.sample(fraction=1.0, shuffle=True, seed=3)
    assert winback.value(shuffled, as_of="1998-06-30").frame.equals(frames[0])
    # Zero-padded string ids sort like the integers, so the rows line up one to one.
    string_ids = tx.with_columns(
        pl.format("C{}", pl.col("customer_id").cast(pl.String).str.zfill(6)).alias("customer_id")
    )
    by_string = winback.value(string_ids, as_of="1998-06-30").frame
    assert by_string["customer_id"][0] == "C000001"
    assert by_string.drop("customer_id").equals(frames[0].drop("customer_id"))


def test_p_alive_is_the_bg_nbd_posterior(cdnow: pl.DataFrame) -> None:
    from winback.models import BetaGeoModel

    tx = cdnow.filter(pl.col("customer_id") <= 6000)
    result = winback.value(tx, as_of="1998-06-30")
    frame = result.frame
    end = result.info.next_period_start
    assert end == datetime(1998, 7, 1)  # June 1998 is the last complete period
    assert frame.columns.index("p_alive") == frame.columns.index("p_active_next") + 1
    # Independently: the BG/NBD on the day-level summary up to the end of that period.
    summary = winback.summary(tx, as_of=end - timedelta(microseconds=1), unit="D")
    model = BetaGeoModel().fit(summary)
    expected = summary.select("customer_id", model.probability_alive(summary).alias("expected"))
    joined = frame.join(expected, on="customer_id", how="left")
    assert joined.get_column("expected").null_count() == 0
    np.testing.assert_allclose(
        joined.get_column("p_alive").to_numpy(), joined.get_column("expected").to_numpy(), 1e-12
    )
    assert result.bg_nbd is not None
    assert result.bg_nbd.params_ == pytest.approx(model.params_, rel=1e-12)
    # P(alive) is a state, P(X' ≥ 1) a purchase: customers without a repeat purchase are alive
    # for sure under BG/NBD, yet few of them buy next month.
    single = joined.filter(
        pl.col("customer_id").is_in(
            summary.filter(pl.col("frequency") == 0)["customer_id"].implode()
        )
    )
    assert single.height > 0
    assert (single.get_column("p_alive") == 1.0).all()
    assert (single.get_column("p_active_next") < 0.5).all()


def test_p_alive_is_missing_with_a_reason_when_the_bg_nbd_cannot_be_fitted() -> None:
    from winback.value.forecast import probability_alive

    # Nobody bought twice: the BG/NBD has nothing to fit.
    summary = pl.DataFrame(
        {
            "customer_id": [1, 2, 3],
            "frequency": [0, 0, 0],
            "recency": [0.0, 0.0, 0.0],
            "T": [30.0, 20.0, 10.0],
        }
    )
    values, model, reason = probability_alive(summary, pl.Series([3, 1, 2]))
    assert np.isnan(values).all()
    assert model is None
    assert reason
    values, model, reason = probability_alive(None, pl.Series([1]))
    assert np.isnan(values).all()
    assert reason == "no complete period to fit the BG/NBD on"


# -- per-customer aggregates: the one-pass kernel against a Polars reference ----------------------
def _aggregates_reference(
    panel: pl.DataFrame, n_complete: int, buckets: list[int], edges: list[float]
) -> pl.DataFrame:
    """The per-customer aggregates as a Polars group-by (the implementation before the kernel),
    money sums by ``np.bincount`` in row order."""

    def bins(column: str, cuts: list[float] | list[int]) -> pl.Expr:
        expr = pl.lit(0, dtype=pl.Int64)
        for cut in cuts:
            expr = expr + (pl.col(column) >= cut).cast(pl.Int64)
        return expr

    active, complete = pl.col("occasions") > 0, pl.col("period") < n_complete
    birth = pl.col("period").filter(active).min().over("customer_id").fill_null(n_complete)
    panel = panel.with_columns(
        (pl.col("period") > birth).alias("_after"),
        bins("occasions", buckets[1:]).alias("f_bin"),
        bins("_mean", edges).alias("m_bin"),
    )
    model = active & complete & pl.col("_after")
    ok = active & complete & (pl.col("revenue") > 0)
    m_k = (pl.col("revenue") - pl.col("cost")) / pl.col("revenue")
    k = pl.col("period").cast(pl.Float64)
    out = (
        panel.group_by("customer_id")
        .agg(
            pl.col("period").filter(active).min().alias("birth"),
            pl.col("occasions").filter(model).sum().alias("period_frequency"),
            pl.col("positive_occasions").filter(model).sum().alias("spend_frequency"),
            pl.col("period").filter(active & complete).max().alias("last_active"),
            pl.col("f_bin").filter(active & complete).last().alias("f_bin"),
            pl.col("m_bin").filter(active & complete).last().alias("m_bin"),
            pl.col("occasions").filter(active & complete).last().alias("last_occasions"),
            pl.col("expense").filter(pl.col("expense") > 0).min().alias("expense_floor"),
            ok.sum().alias("_mn"),
            k.filter(ok).sum().alias("_sk"),
            (k * k).filter(ok).sum().alias("_skk"),
            m_k.filter(ok).last().alias("last_margin"),
            pl.col("period").filter(ok).max().alias("last_margin_period"),
        )
        .sort("customer_id")
    )
    group = panel.select(pl.col("customer_id").rle_id()).to_series().to_numpy()
    weights = {
        "_spend_sum": pl.when(model).then(pl.col("positive_revenue")).otherwise(0.0),
        "revenue_to_date": pl.col("revenue"),
        "cost_to_date": pl.col("cost"),
        "expense_to_date": pl.col("expense"),
        "_sm": pl.when(ok).then(m_k).otherwise(0.0),
        "_skm": pl.when(ok).then(k * m_k).otherwise(0.0),
    }
    return out.with_columns(
        pl.Series(
            name,
            np.bincount(
                group, weights=panel.select(w).to_series().to_numpy(), minlength=out.height
            ),
        )
        for name, w in weights.items()
    )


_money = st.sampled_from([0.0, 0.1, 1 / 3, 2.5, 7.25, -3.0, 1e-3 / 7, 99.99])


@given(
    rows=st.lists(
        st.tuples(
            st.integers(1, 6),  # customer
            st.integers(0, 7),  # period
            st.integers(0, 4),  # occasions (0: an expense-only period)
            _money,  # revenue
            _money,  # cost
            st.sampled_from([0.0, 0.0, 2.0, 1 / 7, 5.5]),  # expense
        ),
        min_size=1,
        max_size=50,
        unique_by=lambda r: (r[0], r[1]),
    ),
    n_complete=st.integers(1, 8),
)
def test_customer_aggregates_match_the_group_by_reference(rows: list, n_complete: int) -> None:
    panel = (
        pl.DataFrame(
            rows,
            schema=["customer_id", "period", "occasions", "revenue", "cost", "expense"],
            orient="row",
        )
        .with_columns(
            pl.col("occasions").alias("positive_occasions"),
            pl.col("revenue").clip(lower_bound=0).alias("positive_revenue"),
            pl.when(pl.col("occasions") > 0)
            .then(pl.col("revenue") / pl.col("occasions"))
            .alias("_mean"),
        )
        .sort("customer_id", "period")
    )
    buckets, edges = [1, 2, 3, 5], [0.5, 2.0, 6.0]
    got = customer_aggregates(panel, n_complete, buckets, edges)
    want = _aggregates_reference(panel, n_complete, buckets, edges)
    assert_frame_equal(got, want.select(got.columns), check_exact=True)
