"""p_lapse (docs/methods.md#p-lapse) and the data-driven TrF cuts (docs/methods.md#outcome-cuts):
calibration against a simulated lapse process whose true probabilities are known, every customer
once, determinism, typed refusals; the cuts against a brute-force search."""

from __future__ import annotations

import itertools
from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import winback
from winback.errors import WinbackConfigError, WinbackFitError
from winback.lapse import LapseModel, lapse_snapshots, outcome_cuts
from winback.silence import SILENCE_COLUMNS

START = date(2020, 1, 1)
DAYS = 3 * 365
H = 90.0


def simulate(customers: int, seed: int) -> tuple[pl.DataFrame, dict[int, float], date]:
    """A stationary BG-like process: arrivals uniform over the window; a purchase rate λ per
    customer from a two-point mixture; after each purchase the customer drops out with
    probability 0.15. Returns the transactions up to the cut-off, each customer's TRUE
    P(no purchase in the H days after it) (1 if dropped out, else exp(−λH)), and the cut-off."""
    rng = np.random.default_rng(seed)
    cutoff = DAYS - int(H) - 1
    ids, days, truth = [], [], {}
    for c in range(1, customers + 1):
        rate = 1 / 15 if rng.random() < 0.4 else 1 / 120
        t = float(rng.uniform(0, cutoff))
        alive = True
        while True:
            ids.append(c)
            days.append(int(t))
            if rng.random() < 0.15:
                alive = False
                break
            t += rng.exponential(1 / rate)
            if t > cutoff + 1:
                break
        truth[c] = 1.0 if not alive else float(np.exp(-rate * H))
    frame = pl.DataFrame(
        {"customer_id": ids, "ts": [START + timedelta(days=d) for d in days]}
    ).filter(pl.col("ts") <= START + timedelta(days=cutoff))
    return frame, truth, START + timedelta(days=cutoff)


@pytest.fixture(scope="module")
def simulated() -> tuple[pl.DataFrame, dict[int, float], date, pl.DataFrame]:
    tx, truth, cutoff = simulate(2000, seed=7)
    scored = winback.lapse(tx, as_of=cutoff, num_threads=1)
    return tx, truth, cutoff, scored


def test_p_lapse_is_calibrated_against_the_known_lapse_process(
    simulated: tuple[pl.DataFrame, dict[int, float], date, pl.DataFrame],
) -> None:
    _, truth, _, scored = simulated
    p = scored.get_column("p_lapse").to_numpy()
    true = np.array([truth[c] for c in scored.get_column("customer_id").to_list()])
    order = np.argsort(p, kind="stable")
    for part in np.array_split(order, 5):
        # The model cannot see λ or the dropout, only their traces; what it can be asked is
        # that each quintile's mean p_lapse matches the mean true probability there.
        assert abs(p[part].mean() - true[part].mean()) < 0.06
    # and it ranks: far better than chance at telling the true lapsers' probability apart
    assert np.corrcoef(p, true)[0, 1] > 0.6
    assert p.mean() == pytest.approx(true.mean(), abs=0.03)


def test_every_customer_once_with_a_reason_where_not_computed(
    simulated: tuple[pl.DataFrame, dict[int, float], date, pl.DataFrame],
) -> None:
    tx, _, cutoff, scored = simulated
    assert scored.columns == [*SILENCE_COLUMNS, "p_lapse", "lapse_reason"]
    assert scored.get_column("customer_id").to_list() == sorted(set(tx["customer_id"].to_list()))
    p = scored.get_column("p_lapse")
    assert p.null_count() == 0
    assert ((p > 0) & (p < 1)).all()
    assert scored.get_column("lapse_reason").null_count() == scored.height
    # Customers whose rows all lie after as_of are listed with a reason, not dropped.
    early = cutoff - timedelta(days=200)
    model = LapseModel(num_threads=1).fit(tx, as_of=early)
    at_early = model.predict(tx, as_of=early)
    assert at_early.height == scored.height
    later = at_early.filter(pl.col("lapse_reason") == "not_yet_customer")
    first = tx.group_by("customer_id").agg(pl.col("ts").min())
    expected = first.filter(pl.col("ts") > early).get_column("customer_id").sort().to_list()
    assert later.get_column("customer_id").to_list() == expected
    assert later.get_column("p_lapse").null_count() == later.height


def test_same_output_for_any_row_order_and_thread_count() -> None:
    tx, _, cutoff = simulate(600, seed=11)
    once = winback.lapse(tx, as_of=cutoff, num_threads=1)
    shuffled = tx.sample(fraction=1.0, shuffle=True, seed=3)
    assert winback.lapse(shuffled, as_of=cutoff, num_threads=2).equals(once)


def test_fitted_attributes_and_the_logistic_variant(
    simulated: tuple[pl.DataFrame, dict[int, float], date, pl.DataFrame],
) -> None:
    tx, truth, cutoff, _ = simulated
    model = LapseModel(model="logistic", calibration_snapshots=1)
    assert model.fit(tx, as_of=cutoff) is model
    assert model.calibration_from_ == model.snapshots_[-1]
    assert 0 < model.base_rate_ < 1
    assert model.rows_ > 0
    p = model.predict(tx, as_of=cutoff).get_column("p_lapse").to_numpy()
    assert np.isfinite(p).all()
    assert p.mean() == pytest.approx(np.mean(list(truth.values())), abs=0.05)


def test_labels_by_hand() -> None:
    tx = pl.DataFrame(
        {
            "customer_id": [1, 1, 1, 2, 3],
            "ts": [
                date(2024, 1, 3),
                date(2024, 1, 20),
                date(2024, 3, 1),  # 1 buys 30 days after the January snapshot
                date(2024, 1, 10),
                date(2024, 2, 15),  # 3 is not a customer yet at the end of January
            ],
        }
    )
    table = lapse_snapshots(tx, as_of=[date(2024, 1, 31)], horizon_days=30)
    assert table.select("customer_id", "n_occasions", "lapsed").rows() == [
        (1, 2, False),
        (2, 1, True),
    ]
    assert lapse_snapshots(tx, as_of=[date(2024, 1, 31)], horizon_days=29).get_column(
        "lapsed"
    ).to_list() == [True, True]


def test_refusals() -> None:
    tx = pl.DataFrame({"customer_id": [1, 2], "ts": [date(2024, 1, 1), date(2024, 2, 1)]})
    with pytest.raises(WinbackConfigError, match="horizon_days"):
        LapseModel(horizon_days=0).fit(tx)
    with pytest.raises(WinbackConfigError, match="model="):
        LapseModel(model="forest").fit(tx)  # type: ignore[arg-type]
    with pytest.raises(WinbackFitError, match="month-end snapshots"):
        LapseModel().fit(tx)
    with pytest.raises(WinbackConfigError, match="not fitted"):
        LapseModel().predict(tx)
    with pytest.raises(WinbackConfigError, match="outcome is unknown"):
        lapse_snapshots(tx, as_of=["2024-01-31"], horizon_days=90)


def brute_force_eta2(x: np.ndarray, y: np.ndarray, min_rows: float) -> float:
    """η² of the best five contiguous groups, trying every set of four cuts among the values."""
    values = np.unique(x)
    best = -1.0
    for cuts in itertools.combinations(values[1:], 4):
        codes = np.searchsorted(np.asarray(cuts), x, side="right")
        counts = np.bincount(codes, minlength=5)
        if counts.min() < min_rows:
            continue
        means = np.bincount(codes, weights=y, minlength=5) / counts
        between = float(np.sum(counts * (means - y.mean()) ** 2))
        best = max(best, between / float(np.sum((y - y.mean()) ** 2)))
    return best


@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 1.0]), st.booleans()),
        min_size=40,
        max_size=120,
    )
)
def test_outcome_cuts_match_a_brute_force_search(rows: list[tuple[float, bool]]) -> None:
    x = np.array([r[0] for r in rows])
    y = np.array([float(r[1]) for r in rows])
    table = pl.DataFrame({"rank_ratio": x, "lapsed": y})
    if y.min() == y.max():
        return
    reference = brute_force_eta2(x, y, 0.05 * x.size)
    if reference < 0:
        with pytest.raises(WinbackFitError):
            outcome_cuts(table)
        return
    found = outcome_cuts(table)
    assert found.separation == pytest.approx(reference, abs=1e-12)
    assert list(found.cuts) == sorted(found.cuts)
    assert len(set(found.cuts)) == 4
    assert found.groups.get_column("rows").sum() == x.size
    assert found.groups.get_column("rows").min() >= 0.05 * x.size
    shuffled = table.sample(fraction=1.0, shuffle=True, seed=1)
    assert outcome_cuts(shuffled).cuts == found.cuts


def test_drift_correction_carries_the_lapse_rate_trend_forward() -> None:
    from winback import _io
    from winback.lapse import _drift

    # Six month-end snapshots whose lapse rate rises by exactly 0.1 on the logit scale a month.
    ends = [date(2024, m, d) for m, d in ((1, 31), (3, 31), (5, 31), (7, 31), (9, 30), (11, 30))]
    cutoffs = [_io.as_of_to_micros(d, None) for d in ends]
    rows = 200_000
    pieces = []
    for cutoff in cutoffs:
        month = (cutoff - cutoffs[0]) / (365.25 / 12 * 86_400e6)
        lapsed = round(rows / (1 + np.exp(-(0.2 + 0.1 * month))))
        pieces.append(
            pl.DataFrame(
                {"snapshot": [cutoff] * rows, "lapsed": [True] * lapsed + [False] * (rows - lapsed)}
            )
        )
    table = pl.concat(pieces)
    as_of = _io.as_of_to_micros(date(2025, 2, 28), None)  # three months after the last
    months = (as_of - cutoffs[-1]) / (365.25 / 12 * 86_400e6)
    assert _drift(table, cutoffs, as_of, 6) == pytest.approx(0.1 * months, rel=0.01)
    assert _drift(table, cutoffs, as_of, 2) == 0.0  # too few snapshots: off
    assert _drift(table, cutoffs, as_of, 0) == 0.0


@pytest.fixture(scope="module")
def auto_and_off(
    simulated: tuple[pl.DataFrame, dict[int, float], date, pl.DataFrame],
) -> tuple[LapseModel, LapseModel]:
    tx, _, cutoff, _ = simulated
    auto = LapseModel(num_threads=1).fit(tx, as_of=cutoff)
    off = LapseModel(drift_snapshots=0, num_threads=1).fit(tx, as_of=cutoff)
    return auto, off


def test_auto_drift_does_not_hurt_where_the_trend_stopped(
    simulated: tuple[pl.DataFrame, dict[int, float], date, pl.DataFrame],
    auto_and_off: tuple[LapseModel, LapseModel],
) -> None:
    """The simulated base's lapse rate rose over the last labelled months, then levelled: the
    fixed six-snapshot correction overshoots there (benches/README.md). "auto" (the default)
    must not be worse than no correction against the TRUE probabilities by more than a hair."""
    tx, truth, cutoff, scored = simulated
    auto, off = auto_and_off
    assert auto.drift_snapshots == "auto"  # the default
    true = np.array([truth[c] for c in scored.get_column("customer_id").to_list()])

    def error(model: LapseModel) -> float:
        p = model.predict(tx, as_of=cutoff).get_column("p_lapse").to_numpy()
        return float(np.mean((p - true) ** 2))

    assert error(auto) <= error(off) + 5e-4
    fixed = LapseModel(drift_snapshots=6, num_threads=1).fit(tx, as_of=cutoff)
    assert error(auto) <= error(fixed) + 5e-4
    # lapse() uses the same default
    assert auto.predict(tx, as_of=cutoff).equals(scored)


def test_auto_drift_records_its_choice_and_evidence(
    auto_and_off: tuple[LapseModel, LapseModel],
) -> None:
    auto, off = auto_and_off
    assert off.drift_evidence_ is None
    assert off.drift_snapshots_ == 0
    assert off.drift_ == 0.0
    evidence = auto.drift_evidence_
    assert evidence is not None
    assert evidence.get_column("drift_snapshots").to_list() == [0, 3, 6, 12]
    assert evidence.get_column("chosen").sum() == 1
    chosen = evidence.filter(pl.col("chosen")).row(0, named=True)
    assert chosen["drift_snapshots"] == auto.drift_snapshots_
    none = evidence.filter(pl.col("drift_snapshots") == 0).row(0, named=True)
    assert none["mean_shift"] == 0.0
    assert none["wins"] == 0
    assert none["z"] == 0.0
    if auto.drift_snapshots_:
        # chosen only on evidence: better than no correction on both measures, significantly
        assert chosen["log_loss"] < none["log_loss"]
        assert chosen["brier"] < none["brier"]
        assert chosen["z"] >= 2.0
    else:
        assert auto.drift_ == 0.0
        beaten = evidence.filter(
            (pl.col("log_loss") < none["log_loss"])
            & (pl.col("brier") < none["brier"])
            & (pl.col("z") >= 2.0)
        )
        assert beaten.height == 0
    # the checked snapshots are the latest three labelled ones, and out of time for the check
    assert auto.drift_checked_ == auto.snapshots_[-3:]
    assert np.isfinite(evidence.select("log_loss", "brier").to_numpy()).all()


def simulate_fading(customers: int, seed: int) -> tuple[pl.DataFrame, dict[int, float], date]:
    """A base whose trend persists to the cut-off: arrivals uniform over the window, each
    customer a Poisson process whose rate fades with calendar time, λ(t) = λ₀·exp(−t/500 d)
    (λ₀ = 1/20 or 1/60 a day), no dropout. The same features mean a higher lapse probability
    every month, so the trend of the labelled snapshots carries forward. Returns transactions,
    each customer's TRUE P(no purchase in the H days after the cut-off) and the cut-off."""
    rng = np.random.default_rng(seed)
    tau = 500.0
    cutoff = DAYS - int(H) - 1
    ids, days, truth = [], [], {}
    for c in range(1, customers + 1):
        lam = 1 / 20 if rng.random() < 0.5 else 1 / 60
        t = float(rng.uniform(0, cutoff - 30))
        while t <= cutoff:
            ids.append(c)
            days.append(int(t))
            # the next event: invert the cumulative hazard λ₀τ(e^(−t/τ) − e^(−t'/τ)) = Exp(1)
            inside = np.exp(-t / tau) - rng.exponential() / (lam * tau)
            if inside <= 0:
                break
            t = -tau * np.log(inside)
        mass = lam * tau * (np.exp(-(cutoff + 1) / tau) - np.exp(-(cutoff + 1 + H) / tau))
        truth[c] = float(np.exp(-mass))
    frame = pl.DataFrame(
        {"customer_id": ids, "ts": [START + timedelta(days=d) for d in days]}
    ).filter(pl.col("ts") <= START + timedelta(days=cutoff))
    return frame, truth, START + timedelta(days=cutoff)


def test_auto_drift_corrects_a_trend_that_persists() -> None:
    tx, truth, cutoff = simulate_fading(2000, seed=3)
    auto = LapseModel(num_threads=1).fit(tx, as_of=cutoff)
    off = LapseModel(drift_snapshots=0, num_threads=1).fit(tx, as_of=cutoff)
    assert auto.drift_snapshots_ > 0
    assert auto.drift_ > 0
    out = auto.predict(tx, as_of=cutoff)
    true = np.array([truth[c] for c in out.get_column("customer_id").to_list()])
    p_auto = out.get_column("p_lapse").to_numpy()
    p_off = off.predict(tx, as_of=cutoff).get_column("p_lapse").to_numpy()
    # closer to the truth than no correction, customer by customer and in the mean
    assert np.mean((p_auto - true) ** 2) < np.mean((p_off - true) ** 2)
    assert abs(p_auto.mean() - true.mean()) < abs(p_off.mean() - true.mean())


def test_auto_drift_falls_back_to_no_correction_on_a_short_history(
    simulated: tuple[pl.DataFrame, dict[int, float], date, pl.DataFrame],
) -> None:
    tx, _, cutoff, _ = simulated
    # 5 labelled snapshots: the earliest checked one (the third) has none whose 90 days end by it
    short = LapseModel(max_snapshots=5, model="logistic", num_threads=1).fit(tx, as_of=cutoff)
    assert short.drift_snapshots_ == 0
    assert short.drift_ == 0.0
    assert short.drift_evidence_ is not None
    assert short.drift_evidence_.height == 0
    assert short.drift_checked_ == []
    with pytest.raises(WinbackConfigError, match="drift_snapshots"):
        LapseModel(drift_snapshots="always").fit(tx)  # type: ignore[arg-type]


def slow_paired_z(losses: np.ndarray, customers: list[int], off: int) -> list[float]:
    """The clustered z of the mean gain, customer by customer in plain Python."""
    out = []
    for row in losses:
        gains = [float(a - b) for a, b in zip(losses[off], row, strict=True)]
        mean = sum(gains) / len(gains)
        by: dict[int, float] = {}
        for c, g in zip(customers, gains, strict=True):
            by[c] = by.get(c, 0.0) + (g - mean)
        m = len(by)
        se = (sum(v * v for v in by.values()) * m / max(m - 1, 1)) ** 0.5 / len(gains)
        out.append(mean / se if se > 0 else 0.0)
    return out


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 8),
            st.floats(0.01, 3.0),
            st.floats(0.01, 3.0),
            st.floats(0.01, 3.0),
        ),
        min_size=2,
        max_size=40,
    ),
    st.randoms(use_true_random=False),
)
def test_paired_z_matches_a_slow_reference_and_ignores_row_order(
    rows: list[tuple[int, float, float, float]], rnd: object
) -> None:
    from winback.lapse import _paired_z

    customers = [r[0] for r in rows]
    losses = np.array([[r[1] for r in rows], [r[2] for r in rows], [r[3] for r in rows]])
    z = _paired_z(losses, pl.Series(customers), 0)
    assert z == pytest.approx(slow_paired_z(losses, customers, 0), rel=1e-9, abs=1e-9)
    assert z[0] == 0.0
    order = list(range(len(rows)))
    rnd.shuffle(order)  # type: ignore[attr-defined]
    again = _paired_z(losses[:, order], pl.Series([customers[i] for i in order]), 0)
    assert again == pytest.approx(z, rel=1e-9, abs=1e-9)
