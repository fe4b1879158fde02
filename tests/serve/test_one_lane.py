"""The one-customer lane of ``POST /v1/score`` (winback.serve.json_body.score_small): a small
JSON body of one customer with ``as_of`` is checked, scored and encoded in one pass. It must
answer exactly what the general way answers (:func:`parse_body` then :func:`score_parsed`,
which scores through the public :meth:`Scorer.score_one`): the same bytes, or the same refusal
(status, field, customer, detail); any body it does not take goes the general way."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("msgspec")

from winback.scorer import Scorer
from winback.serve.config import Limits, ServeConfig
from winback.serve.json_body import Parsed, parse_body, score_parsed, score_small
from winback.serve.problems import ProblemError

LIMITS = Limits(max_customers=40, max_purchases=200)
VALUE = {"horizon": 12, "value_levels": [20.0, 100.0], "quadrant_cuts": [50.0, 2.0]}
START = datetime(1996, 6, 1)


@pytest.fixture(scope="module")
def scorer(model_dir: Path) -> Scorer:
    return ServeConfig(models=str(model_dir), value=VALUE).scorer()


def general(scorer: Scorer, body: bytes) -> tuple[bytes, int] | ProblemError:
    """The general way's answer (the reference)."""
    try:
        return score_parsed(scorer, parse_body(body, LIMITS))
    except ProblemError as problem:
        return problem


def lane(scorer: Scorer, body: bytes) -> tuple[tuple[bytes, int] | ProblemError, bool]:
    """score_small's answer (the general way's scoring after it when it hands a Parsed on),
    and whether the lane answered itself."""
    try:
        got = score_small(scorer, body, LIMITS)
    except ProblemError as problem:
        return problem, False
    if isinstance(got, Parsed):
        try:
            return score_parsed(scorer, got), False
        except ProblemError as problem:
            return problem, False
    return got, True


def assert_same(
    got: tuple[bytes, int] | ProblemError, want: tuple[bytes, int] | ProblemError
) -> None:
    if isinstance(want, ProblemError):
        assert isinstance(got, ProblemError), got
        assert (got.status, got.detail, got.field, got.customer_id) == (
            want.status,
            want.detail,
            want.field,
            want.customer_id,
        )
    else:
        assert got == want


def render(at: datetime, how: str) -> str:
    if how == "date":
        return at.date().isoformat()
    if how == "micro":
        return at.isoformat(timespec="microseconds")
    if how == "minutes":  # read by fromisoformat, not by the compiled reader: the general way
        return at.isoformat(timespec="minutes")
    return at.isoformat(sep=how, timespec="seconds")


@st.composite
def bodies(draw: Any) -> bytes:
    n = draw(st.integers(1, 60))
    offsets = draw(st.lists(st.integers(0, 800 * 86_400), min_size=n, max_size=n))
    how = draw(st.sampled_from(["date", "T", " ", "micro", "minutes"]))
    amounts = draw(st.sampled_from(["all", "none", "mixed", "ints"]))
    purchases = []
    for i, seconds in enumerate(offsets):
        purchase: dict[str, Any] = {"ts": render(START + timedelta(seconds=seconds), how)}
        if amounts == "all" or (amounts == "mixed" and i % 2 == 0):
            purchase["amount"] = draw(st.floats(0.0, 500.0, allow_nan=False))
        elif amounts == "ints":
            purchase["amount"] = draw(st.integers(0, 400))
        purchases.append(purchase)
    cid = draw(st.one_of(st.integers(-(2**63), 2**63 - 1), st.text(max_size=8)))
    # as_of mostly after every purchase, sometimes inside the history or before all of it
    as_of = (START + timedelta(days=draw(st.sampled_from([900, 400, -3])))).date().isoformat()
    return json.dumps(
        {"as_of": as_of, "customers": [{"customer_id": cid, "purchases": purchases}]}
    ).encode()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=bodies())
def test_lane_answers_as_the_general_way(scorer: Scorer, body: bytes) -> None:
    got, _ = lane(scorer, body)
    assert_same(got, general(scorer, body))


def test_lane_takes_the_usual_body_and_hands_on_the_rest(scorer: Scorer) -> None:
    """The usual body (seconds, amounts, as_of) is answered by the lane itself; two customers,
    no as_of, minute-only times, mixed amounts, an as_of before the first purchase and broken
    JSON are not, and come out as the general way's answers or refusals."""
    purchases = [
        {"ts": (START + timedelta(days=9 * i, seconds=77 * i)).isoformat(), "amount": 1.5 * i}
        for i in range(40)
    ]

    def body(**changes: Any) -> bytes:
        payload: dict[str, Any] = {
            "as_of": "1998-06-30",
            "customers": [{"customer_id": 7, "purchases": purchases}],
        }
        payload.update(changes)
        return json.dumps(payload).encode()

    usual = body()
    got, taken = lane(scorer, usual)
    assert taken
    assert_same(got, general(scorer, usual))
    answer = json.loads(got[0]) if isinstance(got, tuple) else None
    assert answer is not None
    assert answer["customers"][0]["customer_id"] == 7
    assert answer["customers"][0]["n_occasions"] == 40
    others = [
        body(
            customers=[
                {"customer_id": 7, "purchases": purchases},
                {"customer_id": 8, "purchases": purchases},
            ]
        ),
        body(as_of=None),
        body(customers=[{"customer_id": 7, "purchases": [{"ts": "1997-01-01T10:05"}]}]),
        body(
            customers=[
                {
                    "customer_id": 7,
                    "purchases": [{"ts": "1997-01-01", "amount": 1.0}, {"ts": "1997-01-02"}],
                }
            ]
        ),
        body(as_of="1990-01-01"),
        body(as_of="1998-06-30T00:00:00+02:00"),
        usual[:-5],
    ]
    for other in others:
        got, taken = lane(scorer, other)
        assert not taken, other[:120]
        assert_same(got, general(scorer, other))
    refused = general(scorer, body(as_of="1990-01-01"))
    assert isinstance(refused, ProblemError)
    assert refused.status == 422


def test_score_checked_is_score_one(scorer: Scorer) -> None:
    """The scorer's entry for checked inputs gives score_one's fields, or None where score_one
    refuses (no purchase at or before as_of)."""
    from array import array

    import numpy as np

    times = np.array(
        ["1997-01-03T10:00:00", "1997-03-05T00:00:00", "1997-03-05T11:00:00", "1998-01-01"],
        dtype="datetime64[us]",
    )
    amounts = np.array([10.0, 2.5, 0.0, 99.0])
    want = scorer.score_one(times, amounts, as_of="1998-06-30").as_dict()
    got = scorer._score_checked(
        memoryview(times.view(np.int64).tobytes()).cast("q"), array("d", amounts), "1998-06-30"
    )
    assert got == want
    assert (
        scorer._score_checked(times.view(np.int64), None, "1998-06-30")
        == scorer.score_one(times, as_of="1998-06-30").as_dict()
    )
    assert scorer._score_checked(times.view(np.int64), None, "1996-01-01") is None
