"""The loop config's [priority] and [recommend] blocks (docs/loop.md#the-config-file), and the
recommendations in the contact messages (docs/methods.md#recommendations)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import polars as pl
import pytest

import winback
from winback.errors import WinbackConfigError
from winback.loop.config import EXAMPLE_CONFIG, parse_config
from winback.loop.pipeline import Pipeline

SOURCE = {"paths": ["sales.csv"]}


def _config(**tables: Any) -> Any:
    return parse_config({"source": SOURCE, **tables}, base="/data")


def test_defaults_keep_the_group_priority() -> None:
    cfg = _config()
    assert cfg.priority == "group"
    assert cfg.priority_weights is None
    assert cfg.recommend is False
    assert (cfg.recommend_n, cfg.recommend_neighbours, cfg.recommend_exclude_bought) == (
        10,
        50,
        True,
    )


def test_example_config_parses_with_the_new_blocks() -> None:
    import tomllib

    raw = tomllib.loads(EXAMPLE_CONFIG)
    assert "priority" in raw
    assert "recommend" in raw
    parse_config(raw, base="/data")


def test_parsed_blocks() -> None:
    cfg = _config(
        priority={
            "kind": "blend",
            "weights": {"value": 3, "business": 1},
            "business_score_col": "expert",
            "business_scores": "scores.csv",
        },
        recommend={"enabled": True, "product_col": "sku", "n": 5, "damping": 0.25},
    )
    assert cfg.priority == "blend"
    assert cfg.priority_weights == {"value": 3.0, "business": 1.0}
    assert cfg.business_scores == "/data/scores.csv"
    assert (cfg.recommend, cfg.product_col, cfg.recommend_n) == (True, "sku", 5)
    assert cfg.recommend_damping == 0.25


@pytest.mark.parametrize(
    ("tables", "key"),
    [
        ({"priority": {"kind": "loud"}}, "priority.kind"),
        ({"priority": {"kind": "group", "weights": {"value": 1}}}, "priority.weights"),
        ({"priority": {"kind": "blend", "weights": {"value": -1}}}, "priority.weights.value"),
        ({"priority": {"kind": "blend", "weights": {"value": "x"}}}, "priority.weights.value"),
        ({"priority": {"kind": "blend", "weights": {"luck": 1}}}, "priority.weights.luck"),
        ({"priority": {"kind": "blend", "weights": {"value": 0}}}, "priority.weights"),
        ({"priority": {"kind": "blend", "weights": {"business": 1}}}, "priority.weights.business"),
        (
            {
                "priority": {
                    "kind": "blend",
                    "weights": {"value": 1},
                    "business_score_col": "e",
                    "business_scores": "s.csv",
                }
            },
            "priority.weights.business",
        ),
        ({"priority": {"business_score_col": "e"}}, "priority.business_scores"),
        ({"priority": {"business_scores": "s.csv"}}, "priority.business_score_col"),
        ({"priority": {"colour": 1}}, "priority.colour"),
        ({"recommend": {"enabled": "yes"}}, "recommend.enabled"),
        ({"recommend": {"n": 0}}, "recommend.n"),
        ({"recommend": {"neighbours": 2.5}}, "recommend.neighbours"),
        ({"recommend": {"damping": 2}}, "recommend.damping"),
        ({"recommend": {"product_col": ""}}, "recommend.product_col"),
        ({"recommend": {"top": 3}}, "recommend.top"),
    ],
)
def test_bad_keys_are_named(tables: dict[str, Any], key: str) -> None:
    with pytest.raises(WinbackConfigError, match=f"config key {key}[: ]"):
        _config(**tables)


def _scored() -> pl.DataFrame:
    from winback.datasets import load_cdnow

    tx = load_cdnow().filter(pl.col("customer_id") <= 1500)
    scored = winback.silence(tx, as_of="1998-06-30")
    # a business score with ties and a spread unrelated to the scores
    return scored.with_columns(
        ((pl.col("customer_id") * 7919) % 13).cast(pl.Float64).alias("expert")
    )


def test_config_weights_give_the_python_priority(tmp_path: Path) -> None:
    scored = _scored()
    scores = tmp_path / "scores.csv"
    scored.select("customer_id", "expert").write_csv(scores)
    cfg = parse_config(
        {
            "source": {"paths": ["sales.csv"]},
            "campaign": {"holdout": 0.2},
            "priority": {
                "kind": "blend",
                "weights": {"value": 0.6, "business": 0.4},
                "business_score_col": "expert",
                "business_scores": "scores.csv",
            },
        },
        base=tmp_path,
    )
    day = date(1998, 6, 30)
    via_config = Pipeline(cfg)._select(scored.drop("expert"), "c-1998-06-30", day)
    via_python = winback.campaign(
        scored,
        campaign_id="c-1998-06-30",
        holdout=0.2,
        start=day,
        priority="blend",
        priority_weights={"value": 0.6, "business": 0.4},
        business_score_col="expert",
    )
    assert via_config.height > 100
    assert via_config.select("customer_id", "priority", "priority_score").equals(
        via_python.select("customer_id", "priority", "priority_score")
    )
    # and the weights matter: another blend orders the list differently
    other = winback.campaign(
        scored,
        campaign_id="c-1998-06-30",
        holdout=0.2,
        start=day,
        priority="blend",
        priority_weights={"value": 0.1, "business": 0.9},
        business_score_col="expert",
    )
    assert not other["customer_id"].equals(via_python["customer_id"])


def test_templates_see_recommended_products() -> None:
    pytest.importorskip("jinja2")
    from winback.loop.messages import Templates, render_outbox

    templates = Templates(
        "inline",
        {
            "default.sms.j2": "{% if customer.recommended_products %}You might like: "
            "{{ customer.recommended_products | join(', ') }}{% else %}Hello{% endif %}"
        },
        {"default": {"sms": "default.sms.j2"}},
    )
    due = pl.DataFrame(
        {
            "campaign_id": ["c", "c"],
            "customer_id": ["1", "2"],
            "staff": [None, None],
            "strategy": ["message", "message"],
            "segment": ["group_e", "group_e"],
            "recommended_products": [["7", "3"], None],
        },
        schema_overrides={"staff": pl.String},
    )
    outbox, missing = render_outbox(templates, due, day=date(2024, 1, 1), language="en", offers={})
    assert missing == 0
    assert outbox["message"].to_list() == ["You might like: 7, 3", "Hello"]


def test_loop_recommendations_read_the_sources(tmp_path: Path) -> None:
    from winback.loop.pipeline import _recommendations_for

    sales = tmp_path / "sales.csv"
    pl.DataFrame(
        {
            "customer_id": [1, 1, 2, 2, 2, 3, 3, 4, 4, 5],
            "ts": ["2024-01-0" + str(d) for d in range(1, 10)] + ["2024-01-09"],
            "amount": [1.0] * 10,
            "sku": ["A", "B", "A", "B", "C", "A", "C", "B", "D", "A"],
        }
    ).write_csv(sales)
    cfg = parse_config(
        {"source": {"paths": ["sales.csv"]}, "recommend": {"enabled": True, "product_col": "sku"}},
        base=tmp_path,
    )
    recs = _recommendations_for(cfg, pl.Series([5, 4]))
    # the hand-computed lists of tests/test_recommend.py (cosine): ids as text
    assert recs.rows() == [("4", ["A", "C"]), ("5", ["C", "B", "D"])]


def test_a_run_renders_recommendations_into_the_outbox(tmp_path: Path) -> None:
    pytest.importorskip("sqlalchemy")
    pytest.importorskip("jinja2")
    from tests.loop.conftest import config, transactions

    tx = transactions(n=120)
    # product = customer mod 6 … plus the neighbour's: every customer buys two products
    tx = tx.with_columns(
        pl.when(pl.int_range(pl.len()).over("customer_id") % 2 == 0)
        .then(pl.col("customer_id") % 6)
        .otherwise((pl.col("customer_id") + 1) % 6)
        .alias("product_id")
    )
    sales = tmp_path / "sales.parquet"
    tx.write_parquet(sales)
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "default.sms.j2").write_text(
        "{{ customer.id }}: {{ customer.recommended_products | join(',') }}", encoding="utf-8"
    )
    raw = config(tmp_path, sales)
    raw["messages"] = {"templates": str(folder)}
    raw["recommend"] = {"enabled": True, "n": 2}
    pipeline = Pipeline(raw)
    pipeline.run("2024-03-01")
    result = pipeline.run("2024-03-08")
    assert result.outbox is not None
    assert result.outbox.height > 0
    want = winback.recommend(tx, n=2)
    lists = {
        str(c): ",".join(str(p) for p in ps)
        for c, ps in want.select("customer_id", "recommended_products").iter_rows()
    }
    for message in result.outbox["message"]:
        customer, products = message.split(": ")
        assert products == lists[customer]


def test_a_lapse_value_config_scores_p_lapse_in_the_loop(tmp_path: Path) -> None:
    """``[priority] kind = "lapse_value"`` makes the run score p_lapse itself (it used to fail
    at run time: the scored table had no p_lapse); the column equals winback.lapse's."""
    pytest.importorskip("sqlalchemy")
    from tests.loop.conftest import config, transactions

    tx = transactions(n=150)
    sales = tmp_path / "sales.parquet"
    tx.write_parquet(sales)
    raw = config(tmp_path, sales)
    raw["priority"] = {"kind": "lapse_value"}
    pipeline = Pipeline(raw)
    day = date(2024, 3, 1)
    scored = pipeline.score(day)
    want = winback.lapse(tx, as_of=day).select("customer_id", "p_lapse")
    got = scored.select("customer_id", "p_lapse").sort("customer_id")
    assert got.height == tx["customer_id"].n_unique()
    assert got["customer_id"].cast(pl.Int64).to_list() == want["customer_id"].to_list()
    assert got["p_lapse"].to_list() == want["p_lapse"].to_list()
    result = pipeline.run(day)
    assert result.selected > 0
    assert result.new_targets > 0
    # a blend without a p_lapse weight does not fit the lapse model
    raw["priority"] = {"kind": "blend", "weights": {"value": 1.0}}
    assert "p_lapse" not in Pipeline(raw).score(day).columns
