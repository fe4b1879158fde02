"""The two passes over a JSON body of ``POST /v1/score`` (winback.serve.json_body): the fast pass
(msgspec structs, times read column-wise) must give exactly what the precise pass (the standard
library's decoder, checked field by field) gives, or hand the body on; it never refuses a body
the precise pass accepts, never accepts one it refuses, and the refusal of :func:`parse_body`
is the precise pass's (status, field, customer). Reference: ``datetime.fromisoformat`` and
``json.loads``, independent of the fast pass."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

pytest.importorskip("msgspec")

from winback.serve.config import Limits
from winback.serve.json_body import (
    Parsed,
    decode,
    fast_parse,
    parse_body,
    parse_request,
)
from winback.serve.problems import ProblemError

LIMITS = Limits(max_customers=40, max_purchases=200)

#: Times in every shape a client might send: the three the fast pass reads column-wise, others
#: fromisoformat reads (minutes only, milliseconds, a "t" separator), and refusals (a zone
#: offset, impossible dates and times, year 0, padding, not a time at all).
RENDERINGS = ["date", "T", " ", "micro", "minutes", "millis", "t"]
RENDER = st.sampled_from(RENDERINGS)
FIRST = datetime(1, 1, 1)
SPAN_US = (datetime(9999, 12, 31, 23, 59) - FIRST) // timedelta(microseconds=1)
ODD_TIME = st.sampled_from(
    [
        "1997-02-29T00:00:00",
        "1996-02-30",
        "1997-13-01",
        "1997-00-10",
        "0000-01-01T00:00:00",
        "1997-01-01T24:00:00",
        "1997-01-01T23:60:00",
        "1997-01-01T23:59:60",
        "1997-01-01T00:00:00+02:00",
        "1997-01-01T00:00:00Z",
        "1997-1-01T00:00:00",
        " 997-01-01T00:00:00",
        "1997-01-01X00:00:00",
        "1997/01/01",
        "19970101",
        "today",
        "",
        "1997-01-01T00:00:00.1234567",
        "٢٠٢٤-01-01",
    ]
)


def render(at: datetime, how: str) -> str:
    if how == "date":
        return at.date().isoformat()
    if how == "micro":
        return at.isoformat(timespec="microseconds")
    if how == "minutes":
        return at.isoformat(timespec="minutes")
    if how == "millis":
        return at.isoformat(timespec="milliseconds")
    return at.isoformat(sep=how if how != "T" else "T", timespec="seconds")


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    """A request body, valid or with one of many kinds of flaw."""
    n = draw(st.integers(0, 6))
    string_ids = draw(st.booleans())
    with_amount = draw(st.booleans())
    one_shape = draw(st.booleans())  # all times of one shape: the column-wise reading
    shape = draw(RENDER)
    ids = draw(st.lists(st.integers(-(2**63), 2**63 - 1), min_size=n, max_size=n, unique=True))
    # The purchases themselves from a seeded generator (many per body, cheap to draw); times
    # anywhere in years 1-9999, often at midnight or on whole seconds.
    rnd = draw(st.randoms(use_true_random=False))
    customers: list[dict[str, Any]] = []
    for i in range(n):
        k = draw(st.integers(1, 80))
        purchases = []
        for _ in range(k):
            how = shape if one_shape else rnd.choice(RENDERINGS)
            at = FIRST + timedelta(microseconds=rnd.randrange(SPAN_US))
            if rnd.random() < 0.3:
                at = at.replace(microsecond=0)
            purchase: dict[str, Any] = {"ts": render(at, how)}
            if with_amount:
                purchase["amount"] = (
                    rnd.randint(-(10**6), 10**6) if rnd.random() < 0.3 else rnd.uniform(-1e6, 1e6)
                )
            purchases.append(purchase)
        customers.append(
            {"customer_id": f"c{ids[i]}" if string_ids else ids[i], "purchases": purchases}
        )
    body: dict[str, Any] = {"customers": customers}
    if draw(st.booleans()):
        body["as_of"] = draw(st.sampled_from(["1998-06-30", "1998-06-30T12:00:00", "bad", 5]))
    flaw = draw(
        st.sampled_from(
            [None] * 6
            + [
                "time",
                "amount_type",
                "amount_missing",
                "amount_null",
                "unknown",
                "id_type",
                "id_twice",
                "id_big",
                "no_purchases",
                "too_many",
                "purchase_not_object",
                "nan",
            ]
        )
    )
    if flaw is not None and customers:
        c = draw(st.integers(0, len(customers) - 1))
        who = customers[c]
        p = draw(st.integers(0, len(who["purchases"]) - 1))
        if flaw == "time":
            who["purchases"][p]["ts"] = draw(ODD_TIME)
        elif flaw == "amount_type":
            who["purchases"][p]["amount"] = draw(st.sampled_from(["5", True, None, [1], 1e300]))
        elif flaw == "amount_missing":
            who["purchases"][p].pop("amount", None)
            if not with_amount:
                who["purchases"][p]["amount"] = 1.5
        elif flaw == "amount_null":
            who["purchases"][p]["amount"] = None
        elif flaw == "unknown":
            who["purchases"][p]["qty"] = 1
        elif flaw == "id_type":
            who["customer_id"] = draw(st.sampled_from([1.5, True, None, "x", 7]))
        elif flaw == "id_twice":
            customers.append({**who})
        elif flaw == "id_big":
            who["customer_id"] = draw(st.sampled_from([2**63, -(2**63) - 1, 2**64]))
        elif flaw == "no_purchases":
            who["purchases"] = []
        elif flaw == "too_many":
            who["purchases"] = who["purchases"] * (
                LIMITS.max_purchases // len(who["purchases"]) + 1
            )
        elif flaw == "purchase_not_object":
            who["purchases"][p] = [who["purchases"][p]["ts"]]
        elif flaw == "nan":
            text = json.dumps(body).encode()
            return text.replace(b'"purchases": [{', b'"purchases": [{"amount": NaN, ', 1)
    return json.dumps(body).encode()


def precise(body: bytes) -> Parsed | ProblemError:
    try:
        return parse_request(decode(body), LIMITS)
    except ProblemError as problem:
        return problem


def attempt(parse: Any, body: bytes) -> Parsed | ProblemError | None:
    try:
        return parse(body, LIMITS)  # type: ignore[no-any-return]
    except ProblemError as problem:
        return problem


def assert_same(got: Parsed, want: Parsed) -> None:
    assert got.ids == want.ids
    assert [type(i) for i in got.ids] == [type(i) for i in want.ids]
    assert got.customers == 0 or got.id_type is want.id_type
    assert got.as_of == want.as_of
    np.testing.assert_array_equal(got.starts, want.starts)
    assert got.times.dtype == want.times.dtype == np.dtype("datetime64[us]")
    np.testing.assert_array_equal(got.times, want.times)
    assert (got.amounts is None) is (want.amounts is None)
    if want.amounts is not None:
        assert got.amounts is not None
        assert got.amounts.tobytes() == want.amounts.tobytes()


@given(bodies())
def test_the_fast_pass_agrees_with_the_precise_pass(body: bytes) -> None:
    want = precise(body)
    fast = attempt(fast_parse, body)
    got = attempt(parse_body, body)
    if isinstance(fast, ProblemError):  # only an as_of, refused as the precise pass does
        assert isinstance(want, ProblemError)
        assert (fast.status, fast.field) == (want.status, want.field) == (422, "as_of")
    if isinstance(want, ProblemError):
        assert not isinstance(fast, Parsed), want.detail
        assert isinstance(got, ProblemError), f"accepted what the precise pass refused: {want}"
        assert (got.status, got.field, got.customer_id, got.index) == (
            want.status,
            want.field,
            want.customer_id,
            want.index,
        )
    else:
        assert isinstance(got, Parsed)
        assert_same(got, want)
        assert fast is None or isinstance(fast, Parsed)
        if fast is not None:
            assert_same(fast, want)


def test_the_fast_pass_takes_the_common_bodies() -> None:
    """The shapes clients send (isoformat with seconds or microseconds, dates; amounts or none;
    int or string ids) are taken by the fast pass, column-wise and one by one; their times
    equal fromisoformat's."""
    start = datetime(1997, 1, 1, 7, 30, 15, 250)
    for n in (3, 200):
        for how in ("T", " ", "micro", "date"):
            times = [start + timedelta(days=37 * i, seconds=4001 * i) for i in range(n)]
            texts = [render(t, how) for t in times]
            for ids, amounts in (([5, 2], True), (["b", "a"], False)):
                half = n // 2
                customers = [
                    {
                        "customer_id": cid,
                        "purchases": [
                            {"ts": t, **({"amount": i + 0.25} if amounts else {})}
                            for i, t in enumerate(part)
                        ],
                    }
                    for cid, part in zip(ids, (texts[:half], texts[half:]), strict=True)
                ]
                body = json.dumps({"as_of": "2030-01-01", "customers": customers}).encode()
                fast = fast_parse(body, LIMITS)
                assert fast is not None, (n, how)
                want = precise(body)
                assert isinstance(want, Parsed)
                assert_same(fast, want)
                expected = np.array(
                    [datetime.fromisoformat(t) for t in texts], dtype="datetime64[us]"
                )
                np.testing.assert_array_equal(fast.times, expected)


def test_a_refusal_names_the_purchase_whichever_pass() -> None:
    ts = [f"1997-01-{d:02d}T10:00:00" for d in range(1, 29)] * 4
    ts[77] = "1997-02-30T10:00:00"
    body = {"customers": [{"customer_id": 8, "purchases": [{"ts": t} for t in ts]}]}
    raw = json.dumps(body).encode()
    assert fast_parse(raw, LIMITS) is None
    with pytest.raises(ProblemError) as caught:
        parse_body(raw, LIMITS)
    assert caught.value.status == 422
    assert caught.value.field == "customers[0].purchases[77].ts"
    assert caught.value.customer_id == 8


def test_decoded_bodies_are_not_tracked_by_the_garbage_collector() -> None:
    """A bulk body decodes into tens of thousands of structs; tracked, they set off full
    collections that tripled the p99 of reading one. None of them may be tracked."""
    import gc

    from winback.serve.json_body import _decoder

    decoder, _ = _decoder()
    body = {
        "as_of": "1998-06-30",
        "customers": [
            {"customer_id": k, "purchases": [{"ts": f"1997-01-0{k + 1}", "amount": 1.5}]}
            for k in range(3)
        ],
    }
    request = decoder.decode(json.dumps(body).encode())
    structs = [request, *request.customers, *(p for c in request.customers for p in c.purchases)]
    assert len(structs) == 7
    assert not any(gc.is_tracked(s) for s in structs)


@given(
    times=st.lists(st.datetimes(min_value=FIRST), min_size=1, max_size=30),
    how=st.sampled_from(["date", "T", " ", "micro", "mixed"]),
    flaw=st.none()
    | st.tuples(
        st.integers(0, 29),
        st.integers(0, 25),
        st.sampled_from(["0", "9", "-", ":", ".", "T", "t", " ", "X", "\n", "٢", "+", ""]),
    ),
)
@example(times=[datetime(1, 1, 1, 5)], how="T", flaw=(0, 3, "0"))  # year 0
@example(times=[datetime(1997, 1, 1)], how="date", flaw=(0, 4, " "))
@example(times=[datetime(2000, 2, 29), datetime(1999, 3, 29)], how="date", flaw=(1, 6, "2"))
@example(times=[datetime(1997, 1, 1, 23)], how="T", flaw=(0, 12, "4"))  # hour 24
def test_columnwise_times_equal_fromisoformat_or_hand_on(
    times: list[datetime], how: str, flaw: tuple[int, int, str] | None
) -> None:
    """The column-wise reading of times (the compiled ISO reader) gives fromisoformat's values,
    or None (the strings are then read one by one); the common shapes, with "T" or a space
    between date and time, mixed or not, are read column-wise."""
    from winback.serve.json_body import _times_columnwise

    shapes = ["date", "T", " ", "micro"]
    ts = [render(at, how if how != "mixed" else shapes[i % 4]) for i, at in enumerate(times)]
    if flaw is not None:
        row, at, char = flaw
        row %= len(ts)
        text = ts[row]
        at %= len(text)
        ts[row] = text[:at] + char + text[at + 1 :]
    got = _times_columnwise(ts)
    try:
        expected = [datetime.fromisoformat(t) for t in ts]
    except ValueError:
        expected = None
    if expected is not None and any(t.tzinfo is not None for t in expected):
        expected = None
    if flaw is None:
        assert got is not None
    if got is not None:
        assert expected is not None
        assert got.tolist() == [t.replace(tzinfo=None) for t in expected]
