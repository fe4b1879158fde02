"""The HTTP service (docs/serving.md#http) as a real ``winback serve`` subprocess on a free local
port: the JSON round trip equals :meth:`Scorer.score`, the health and models endpoints answer, and
client errors are 4xx problem+json bodies naming the field and customer, never a 500."""

from __future__ import annotations

import hashlib
import http.client
import io
import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
pytest.importorskip("prometheus_client")

from tests.serve.helpers import (
    ARROW,
    AS_OF,
    as_json,
    as_json_rows,
    assert_problem,
    histories,
    post,
    request,
    serving,
)
from winback.scorer import SCORE_COLUMNS, Scorer
from winback.serve import ServeConfig

MAX_BODY = 200_000
MAX_CUSTOMERS = 50
MAX_PURCHASES = 40


@pytest.fixture(scope="module")
def server(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    log = tmp_path_factory.mktemp("serve-log") / "stderr.log"
    limits = ["--max-body-bytes", str(MAX_BODY), "--max-customers", str(MAX_CUSTOMERS)]
    with serving(model_dir, log, *limits, "--max-purchases", str(MAX_PURCHASES)) as running:
        yield running.address


def test_round_trip_equals_the_scorer(server: tuple[str, int], model_dir: Path) -> None:
    ids = list(range(1, 41))
    tx, payload = histories(ids)
    status, kind, body = post(server, payload)
    assert status == 200, body
    assert kind.startswith("application/json")
    expected = Scorer.from_dir(model_dir).score(tx, as_of=AS_OF)
    rows = body["customers"]
    assert len(rows) == expected.height == len(ids)
    for got, want in zip(rows, expected.to_dicts(), strict=True):
        assert list(got) == list(SCORE_COLUMNS)
        assert got == {k: as_json(v) for k, v in want.items()}


def test_without_amounts_and_with_string_ids(server: tuple[str, int], model_dir: Path) -> None:
    payload = {
        "as_of": AS_OF,
        "customers": [
            {"customer_id": "b", "purchases": [{"ts": "1997-03-01"}, {"ts": "1997-05-02"}]},
            {"customer_id": "a", "purchases": [{"ts": "1997-01-10"}]},
        ],
    }
    status, _, body = post(server, payload)
    assert status == 200, body
    tx = pl.DataFrame(
        {
            "customer_id": ["b", "b", "a"],
            "ts": [date(1997, 3, 1), date(1997, 5, 2), date(1997, 1, 10)],
        }
    )
    expected = Scorer.from_dir(model_dir).score(tx, as_of=AS_OF, amount_col=None)
    assert body["customers"] == as_json_rows(expected)
    assert body["customers"][0]["expected_value"] is None  # null, never NaN


def test_empty_customer_list(server: tuple[str, int]) -> None:
    assert post(server, {"customers": []})[2] == {"customers": []}


def test_health_and_models(server: tuple[str, int], model_dir: Path) -> None:
    status, _, raw = request(server, "GET", "/healthz")
    assert (status, json.loads(raw)) == (200, {"status": "ok"})
    status, _, raw = request(server, "GET", "/readyz")
    assert (status, json.loads(raw)) == (200, {"status": "ready", "generation": 1})
    status, _, raw = request(server, "GET", "/v1/models")
    assert status == 200
    models = json.loads(raw)
    assert models["purchase_model"]["name"] == "bgnbd"
    assert models["spend_model"]["model"] == "GammaGammaModel"
    assert set(models["purchase_model"]["params"]) == {"r", "alpha", "a", "b"}
    files = {f["file"]: f["sha256"] for f in models["files"]}
    assert files == {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in model_dir.glob("*.json")
    }
    assert models["limits"]["max_body_bytes"] == MAX_BODY


@pytest.mark.parametrize(
    "body",
    [b"{", b'{"customers": [', b"not json", b'{"customers": NaN}', b"\xff\xfe", b""],
)
def test_malformed_json_is_400(server: tuple[str, int], body: bytes) -> None:
    assert_problem(post(server, body), 400)


@pytest.mark.parametrize(
    ("payload", "field", "customer"),
    [
        ([1, 2], None, None),
        ({"customers": {}}, "customers", None),
        ({}, "customers", None),
        ({"customers": [], "extra": 1}, "extra", None),
        ({"as_of": 20240630, "customers": []}, "as_of", None),
        ({"as_of": "yesterday", "customers": []}, "as_of", None),
        ({"customers": [{"customer_id": True, "purchases": [{"ts": "1997-01-01"}]}]}, None, None),
        (
            {"customers": [{"customer_id": 7, "purchases": [{"ts": 19970101}]}]},
            "customers[0].purchases[0].ts",
            7,
        ),
        (
            {"customers": [{"customer_id": 7, "purchases": [{"ts": "1997-01-01T00:00:00+02:00"}]}]},
            "customers[0].purchases[0].ts",
            7,
        ),
        (
            {
                "customers": [
                    {"customer_id": 1, "purchases": [{"ts": "1997-01-01", "amount": 5}]},
                    {"customer_id": 9, "purchases": [{"ts": "1997-01-01", "amount": "5"}]},
                ]
            },
            "customers[1].purchases[0].amount",
            9,
        ),
        (
            {"customers": [{"customer_id": 3, "purchases": [{"ts": "1997-01-01", "qty": 1}]}]},
            "customers[0].purchases[0].qty",
            3,
        ),
        ({"customers": [{"customer_id": 3, "purchases": []}]}, "customers[0].purchases", 3),
        (
            {
                "customers": [
                    {"customer_id": 3, "purchases": [{"ts": "1997-01-01"}]},
                    {"customer_id": "3", "purchases": [{"ts": "1997-01-01"}]},
                ]
            },
            "customers[1].customer_id",
            "3",
        ),
        (
            {
                "customers": [
                    {"customer_id": 3, "purchases": [{"ts": "1997-01-01"}]},
                    {"customer_id": 3, "purchases": [{"ts": "1997-02-01"}]},
                ]
            },
            "customers[1].customer_id",
            3,
        ),
        (
            {"customers": [{"customer_id": 2**70, "purchases": [{"ts": "1997-01-01"}]}]},
            "customers[0].customer_id",
            None,
        ),
        (
            {
                "as_of": "1996-01-01",
                "customers": [{"customer_id": 1, "purchases": [{"ts": "1997-01-01"}]}],
            },
            None,
            None,
        ),
    ],
)
def test_wrong_types_are_422(
    server: tuple[str, int], payload: Any, field: str | None, customer: Any
) -> None:
    assert_problem(post(server, payload), 422, field, customer)


def test_oversize_body_is_413(server: tuple[str, int]) -> None:
    body = b'{"customers": [' + b" " * MAX_BODY + b"]}"
    assert_problem(post(server, body), 413)


def test_oversize_body_without_length_is_413(server: tuple[str, int]) -> None:
    conn = http.client.HTTPConnection(*server, timeout=60)
    try:
        chunks = (b" " * 10_000 for _ in range(MAX_BODY // 10_000 + 2))
        conn.request(
            "POST",
            "/v1/score",
            body=chunks,
            headers={"Content-Type": "application/json"},
            encode_chunked=True,
        )
        response = conn.getresponse()
        assert response.status == 413
        assert json.loads(response.read())["status"] == 413
    finally:
        conn.close()


def test_too_many_customers_and_purchases_are_413(server: tuple[str, int]) -> None:
    one = [{"ts": "1997-01-01"}]
    many = {"customers": [{"customer_id": i, "purchases": one} for i in range(MAX_CUSTOMERS + 1)]}
    assert_problem(post(server, many), 413, "customers")
    long = {
        "customers": [{"customer_id": 5, "purchases": [{"ts": "1997-01-01"}] * (MAX_PURCHASES + 1)}]
    }
    assert_problem(post(server, long), 413, "customers[0].purchases", 5)


def test_other_routes_and_types_are_problems(server: tuple[str, int]) -> None:
    status, kind, raw = request(server, "GET", "/nope")
    assert status == 404
    assert kind.startswith("application/problem+json")
    status, kind, raw = request(server, "GET", "/v1/score")
    assert status == 405
    assert kind.startswith("application/problem+json")
    status, kind, raw = request(
        server, "POST", "/v1/score", b"customer_id,ts\n1,1997-01-01\n", {"Content-Type": "text/csv"}
    )
    assert status == 415
    assert json.loads(raw)["status"] == 415


def test_concurrent_requests_each_get_their_own_answer(
    server: tuple[str, int], model_dir: Path
) -> None:
    """Eight requests at once (scored in the server's thread pool): each answer is its own
    customers' scores, equal to the scorer's."""
    from concurrent.futures import ThreadPoolExecutor

    scorer = Scorer.from_dir(model_dir)
    batches = [list(range(100 + 10 * k, 110 + 10 * k)) for k in range(8)]
    requests = [histories(ids) for ids in batches]
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda r: post(server, r[1]), requests))
    for (tx, _), (status, _, body) in zip(requests, answers, strict=True):
        assert status == 200, body
        expected = scorer.score(tx, as_of=AS_OF)
        assert body["customers"] == as_json_rows(expected)


def arrow_body(frame: pl.DataFrame) -> bytes:
    out = io.BytesIO()
    frame.write_ipc_stream(out)
    return out.getvalue()


def post_arrow(
    address: tuple[str, int], body: bytes, query: str = f"?as_of={AS_OF}"
) -> tuple[int, str, bytes]:
    return request(address, "POST", "/v1/score" + query, body, {"Content-Type": ARROW})


def test_arrow_round_trip_equals_the_scorer(server: tuple[str, int], model_dir: Path) -> None:
    tx, payload = histories(list(range(1, 41)))
    status, kind, raw = post_arrow(server, arrow_body(tx))
    assert status == 200, raw[:500]
    assert kind.startswith(ARROW)
    got = pl.read_ipc_stream(io.BytesIO(raw))
    expected = Scorer.from_dir(model_dir).score(tx, as_of=AS_OF)
    assert got.schema == expected.schema
    assert_frame_equal(got, expected, check_exact=True)
    # The JSON answer for the same histories carries the same values.
    assert post(server, payload)[2]["customers"] == as_json_rows(got)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_arrow_answer_ignores_row_order_and_batches(server: tuple[str, int], seed: int) -> None:
    """Rows shuffled and sent as several record batches: the same answer, byte for byte."""
    tx, _ = histories(list(range(100, 130)))
    reference = post_arrow(server, arrow_body(tx))[2]
    shuffled = tx.sample(fraction=1.0, shuffle=True, seed=seed)
    parts = [shuffled.slice(0, 7), shuffled.slice(7, 20), shuffled.slice(27)]
    status, _, raw = post_arrow(server, arrow_body(pl.concat(parts, rechunk=False)))
    assert status == 200
    assert raw == reference


def test_arrow_string_ids_dates_without_amounts(server: tuple[str, int], model_dir: Path) -> None:
    tx = pl.DataFrame(
        {
            "customer_id": ["b", "b", "a"],
            "ts": [date(1997, 3, 1), date(1997, 5, 2), date(1997, 1, 10)],
        }
    )
    status, _, raw = post_arrow(server, arrow_body(tx))
    assert status == 200, raw[:500]
    expected = Scorer.from_dir(model_dir).score(tx, as_of=AS_OF, amount_col=None)
    assert_frame_equal(pl.read_ipc_stream(io.BytesIO(raw)), expected, check_exact=True)


def _arrow_case(name: str) -> tuple[bytes, int, str | None, Any]:
    base = pl.DataFrame(
        {"customer_id": [5, 5, 6], "ts": [date(1997, 1, 1), date(1997, 2, 1), date(1997, 3, 1)]}
    )
    if name == "garbage":
        return b"\xff\xff\xff\xff garbage", 400, None, None
    if name == "truncated":
        return arrow_body(base)[:-20], 400, None, None
    if name == "json as arrow":
        return b'{"customers": []}', 400, None, None
    if name == "unknown column":
        return arrow_body(base.with_columns(qty=pl.lit(1))), 422, "qty", None
    if name == "no ts":
        return arrow_body(base.drop("ts")), 422, "ts", None
    if name == "float ids":
        return arrow_body(base.with_columns(pl.col("customer_id") * 1.5)), 422, "customer_id", None
    if name == "text ts":
        return arrow_body(base.with_columns(pl.col("ts").cast(pl.String))), 422, "ts", None
    if name == "zoned ts":
        zoned = pl.col("ts").cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
        return arrow_body(base.with_columns(zoned)), 422, "ts", None
    if name == "null ts":
        nulls = pl.Series("ts", [date(1997, 1, 1), None, date(1997, 3, 1)])
        return arrow_body(base.with_columns(nulls)), 422, "ts[1]", 5
    if name == "nan amount":
        amounts = pl.Series("amount", [1.0, 2.0, float("nan")])
        return arrow_body(base.with_columns(amounts)), 422, "amount[2]", 6
    if name == "text amount":
        return arrow_body(base.with_columns(amount=pl.lit("5"))), 422, "amount", None
    if name == "too many purchases":
        many = pl.DataFrame(
            {
                "customer_id": [9] * (MAX_PURCHASES + 1),
                "ts": [date(1997, 1, 1)] * (MAX_PURCHASES + 1),
            }
        )
        return arrow_body(pl.concat([base, many])), 413, "ts", 9
    if name == "too many customers":
        ids = list(range(MAX_CUSTOMERS + 1))
        return (
            arrow_body(pl.DataFrame({"customer_id": ids, "ts": [date(1997, 1, 1)] * len(ids)})),
            413,
            "customer_id",
            None,
        )
    raise AssertionError(name)


@pytest.mark.parametrize(
    "name",
    [
        "garbage",
        "truncated",
        "json as arrow",
        "unknown column",
        "no ts",
        "float ids",
        "text ts",
        "zoned ts",
        "null ts",
        "nan amount",
        "text amount",
        "too many purchases",
        "too many customers",
    ],
)
def test_bad_arrow_bodies_are_problems(server: tuple[str, int], name: str) -> None:
    body, status, field, customer = _arrow_case(name)
    assert_problem(post_arrow(server, body), status, field, customer)


def test_arrow_as_of_is_checked(server: tuple[str, int]) -> None:
    tx, _ = histories([1, 2])
    assert_problem(post_arrow(server, arrow_body(tx), "?as_of=soon"), 422, "as_of")
    assert_problem(post_arrow(server, arrow_body(tx), "?as_of=1990-01-01"), 422)
    # The query parameter is for Arrow bodies; JSON carries as_of in the body.
    status, kind, raw = request(
        server,
        "POST",
        "/v1/score?as_of=1998-01-01",
        b'{"customers": []}',
        {"Content-Type": "application/json"},
    )
    assert_problem((status, kind, raw), 422, "as_of")


@pytest.mark.parametrize("cut", [8, 9, 40, 64, 200])
def test_truncated_arrow_stream_is_400_never_a_partial_answer(
    server: tuple[str, int], cut: int
) -> None:
    tx, _ = histories([1, 2, 3])
    body = arrow_body(tx)
    assert_problem(post_arrow(server, body[:-cut]), 400)


def test_admin_reload_is_off_without_a_token(server: tuple[str, int]) -> None:
    headers = {"Authorization": "Bearer anything"}
    assert_problem(request(server, "POST", "/v1/admin/reload", b"", headers), 404)


def test_openapi_describes_every_route(server: tuple[str, int], model_dir: Path) -> None:
    from starlette.routing import Route

    from winback.serve import create_app

    status, kind, raw = request(server, "GET", "/openapi.json")
    assert status == 200
    assert kind.startswith("application/json")
    spec = json.loads(raw)
    assert spec["openapi"].startswith("3.")
    described = {(path, method.upper()) for path, item in spec["paths"].items() for method in item}
    # The app's own routes (built in-process, never served): each described, nothing more.
    app = create_app(ServeConfig(models=str(model_dir)))
    routes = {
        (route.path, method)
        for route in app.routes
        if isinstance(route, Route)
        for method in (route.methods or set()) - {"HEAD"}
    }
    assert len(routes) == 7
    assert routes == described
    for path, method in described:
        operation = spec["paths"][path][method.lower()]
        assert operation["summary"]
        assert operation["responses"]


@pytest.mark.parametrize("batch", [1, 5, 16, 17])
def test_json_answer_does_not_depend_on_how_customers_are_batched(
    server: tuple[str, int], model_dir: Path, batch: int
) -> None:
    """Small requests are scored customer by customer (Scorer.score_one), larger ones as a
    frame: split a request any way, the rows are the same and equal Scorer.score's."""
    ids = list(range(300, 334))
    tx, payload = histories(ids)
    expected = as_json_rows(Scorer.from_dir(model_dir).score(tx, as_of=AS_OF))
    rows = []
    customers = payload["customers"][::-1]  # any order in, sorted out
    for k in range(0, len(customers), batch):
        status, _, body = post(server, {"as_of": AS_OF, "customers": customers[k : k + batch]})
        assert status == 200, body
        assert all(list(row) == list(SCORE_COLUMNS) for row in body["customers"])
        rows.extend(body["customers"])
    assert sorted(rows, key=lambda row: row["customer_id"]) == expected


def test_string_ids_on_the_frame_path(server: tuple[str, int], model_dir: Path) -> None:
    tx, payload = histories(list(range(400, 430)))
    for customer in payload["customers"]:
        customer["customer_id"] = f"c{customer['customer_id']}"
    tx = tx.with_columns(pl.format("c{}", "customer_id").alias("customer_id"))
    status, _, body = post(server, payload)
    assert status == 200, body
    assert body["customers"] == as_json_rows(Scorer.from_dir(model_dir).score(tx, as_of=AS_OF))


@pytest.mark.parametrize("amount", ["10" + "0" * 400, "1e400"])
def test_amounts_beyond_a_float_are_422(server: tuple[str, int], amount: str) -> None:
    for n in (1, 20):  # both scoring paths
        customers = ",".join(
            f'{{"customer_id":{i},"purchases":[{{"ts":"1997-01-01","amount":{amount if i == n - 1 else 1}}}]}}'
            for i in range(n)
        )
        body = f'{{"as_of":"1998-01-01","customers":[{customers}]}}'.encode()
        assert_problem(post(server, body), 422)


@pytest.mark.parametrize("compression", ["lz4", "zstd"])
@pytest.mark.parametrize("ids", ["int", "dictionary"])
def test_compressed_arrow_streams_are_415(
    server: tuple[str, int], compression: str, ids: str
) -> None:
    """A compressed stream could decode to far more than its size (a 22 kB zstd stream holds
    10^7 rows, 114 MiB): refused before it is decoded, whether the compression is in a record
    batch or in a dictionary batch."""
    tx, _ = histories([1, 2, 3])
    if ids == "dictionary":
        tx = tx.with_columns(pl.col("customer_id").cast(pl.String).cast(pl.Categorical))
    out = io.BytesIO()
    tx.write_ipc_stream(out, compression=compression)  # type: ignore[arg-type]
    body = assert_problem(post_arrow(server, out.getvalue()), 415)
    assert "uncompressed" in body["detail"]
    # The same stream uncompressed is scored (string ids: the dictionary is refused by type).
    plain = io.BytesIO()
    tx.write_ipc_stream(plain)
    assert post_arrow(server, plain.getvalue())[0] == (200 if ids == "int" else 422)


@pytest.mark.parametrize("seed", range(4))
def test_damaged_arrow_streams_are_refused_never_a_500(server: tuple[str, int], seed: int) -> None:
    """Bytes of a valid stream flipped at random (seeded): every answer is a 200 or a
    problem+json 4xx (a damaged date once made Polars panic)."""
    import random

    rng = random.Random(seed)
    tx, _ = histories([1, 2, 3])
    raw = arrow_body(tx)
    for _ in range(25):
        body = bytearray(raw)
        for _ in range(rng.randint(1, 4)):
            body[rng.randrange(len(body) - 8)] = rng.randrange(256)
        status, kind, answer = post_arrow(server, bytes(body))
        assert status == 200 or (
            400 <= status < 500 and kind.startswith("application/problem+json")
        ), (
            status,
            answer[:300],
        )


def test_after_all_the_abuse_no_answer_was_a_500(server: tuple[str, int]) -> None:
    """The last test of the module: of every request above, none was a 500 and the refusals
    were counted (GET /metrics)."""
    raw = request(server, "GET", "/metrics")[2].decode()
    lines = [line for line in raw.splitlines() if line.startswith("winback_http_requests_total{")]
    assert any('status="422"' in line for line in lines)
    assert any('status="413"' in line for line in lines)
    assert not any('status="500"' in line for line in lines), lines


@pytest.mark.parametrize("shape", ["T", " ", "micro", "minutes", "mixed"])
def test_every_time_shape_gives_the_scorers_rows(
    server: tuple[str, int], model_dir: Path, shape: str
) -> None:
    """Times as clients write them, read column-wise by the fast pass (the three common ISO
    shapes) or one by one (minutes only; shapes mixed in one body): the answer equals
    Scorer.score on the same purchases, on both scoring paths (2 and 30 customers)."""
    ids = list(range(500, 530))
    tx, _ = histories(ids)
    # CDNOW's purchases are dates: give them times of day
    tx = tx.with_columns(
        pl.col("ts").cast(pl.Datetime("us")) + pl.duration(seconds=pl.col("customer_id") * 37)
    )
    if shape == "micro":
        tx = tx.with_columns(pl.col("ts") + pl.duration(microseconds=250))
    elif shape == "minutes":
        tx = tx.with_columns(pl.col("ts").dt.truncate("1m"))

    def text(at: Any, how: str) -> str:
        if how in ("minutes", "micro"):
            return str(at.isoformat(timespec="microseconds" if how == "micro" else how))
        return str(at.isoformat(sep=how))

    payload = {
        "customers": [
            {
                "customer_id": int(cid),
                "purchases": [
                    {"ts": text(at, ["T", " ", "micro"][k % 3] if shape == "mixed" else shape)}
                    | {"amount": amount}
                    for at, amount in zip(group["ts"], group["amount"], strict=True)
                ],
            }
            for k, ((cid,), group) in enumerate(tx.group_by("customer_id", maintain_order=True))
        ]
    }
    scorer = Scorer.from_dir(model_dir)
    for count in (2, 30):
        chosen = set(ids[:count])
        status, _, body = post(
            server,
            {
                "as_of": AS_OF,
                "customers": [c for c in payload["customers"] if c["customer_id"] in chosen],
            },
        )
        assert status == 200, body
        expected = scorer.score(tx.filter(pl.col("customer_id").is_in(chosen)), as_of=AS_OF)
        assert body["customers"] == as_json_rows(expected)
