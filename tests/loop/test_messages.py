"""Contact messages (docs/loop.md#contact-messages): the silence in words (English and
Chinese), templates checked before anything is written (syntax, unknown fields, naming the
template and line), the sandbox, the day's outbox."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from tests.loop.conftest import Database, config
from winback.errors import WinbackConfigError
from winback.loop import Pipeline
from winback.loop.messages import load_templates, render_outbox
from winback.loop.silence_words import chinese_number, silence_in_words, span


@pytest.mark.parametrize(
    ("since", "until", "en", "zh"),
    [
        (date(2024, 1, 23), date(2024, 3, 30), "2 months and 7 days", "两个月零七天"),
        (date(2024, 1, 31), date(2024, 3, 7), "1 month and 7 days", "一个月零七天"),
        (date(2023, 1, 1), date(2024, 3, 3), "1 year, 2 months and 2 days", "一年两个月零两天"),
        (date(2022, 5, 5), date(2024, 5, 5), "2 years", "两年"),
        (date(2024, 3, 1), date(2024, 3, 2), "1 day", "一天"),
        (date(2024, 3, 1), date(2024, 3, 13), "12 days", "十二天"),
        (date(2023, 3, 1), date(2024, 2, 1), "11 months", "十一个月"),
        (date(2024, 3, 1), date(2024, 3, 1), "0 days", "零天"),
    ],
)
def test_the_silence_in_words(since: date, until: date, en: str, zh: str) -> None:
    assert silence_in_words(since, until, "en") == en
    assert silence_in_words(since, until, "zh") == zh


def test_calendar_months_and_chinese_numbers() -> None:
    assert span(date(2024, 1, 31), date(2024, 2, 29)) == (0, 1, 0)  # Jan 31 + 1 month
    assert span(date(2023, 1, 31), date(2023, 2, 28)) == (0, 1, 0)
    assert [chinese_number(n) for n in (2, 10, 20, 21, 105, 110, 2002)] == [
        "两",
        "十",
        "二十",
        "二十一",
        "一百零五",
        "一百一十",
        "两千零二",
    ]
    assert chinese_number(2, counting=False) == "二"
    with pytest.raises(WinbackConfigError, match="language='fr'"):
        silence_in_words(date(2024, 1, 1), date(2024, 2, 1), "fr")
    with pytest.raises(WinbackConfigError, match="backwards"):
        span(date(2024, 2, 1), date(2024, 1, 1))


def templates(tmp_path: Path, **files: str) -> Path:
    folder = tmp_path / "templates"
    folder.mkdir(exist_ok=True)
    for name, text in files.items():
        (folder / name.replace("__", ".")).write_text(text, encoding="utf-8")
    return folder


DUE = pl.DataFrame(
    {
        "campaign_id": ["wb-2024-03-01"],
        "customer_id": ["0012"],
        "staff": ["ann"],
        "strategy": ["coupon"],
        "segment": ["group_e"],
        "recency_days": [67.0],
        "silence_score": [2.5],
        "value": [None],
        "value_tier": [None],
    },
    schema_overrides={"value": pl.Float64, "value_tier": pl.String},
)


def test_a_message_has_the_fields_offer_staff_and_silence(tmp_path: Path) -> None:
    folder = templates(
        tmp_path,
        coupon__sms__j2="Hi {{ customer.name }}, {{ silence }} / {{ silence_zh }}: "
        "{{ offer }} — {{ staff }} ({{ customer.last_purchase }})",
    )
    customers = pl.DataFrame({"customer_id": ["0012"], "name": ["Mei"]})
    outbox, missing = render_outbox(
        load_templates(str(folder)),
        DUE,
        day=date(2024, 3, 30),
        language="en",
        offers={"coupon": "10% off"},
        customers=customers,
    )
    assert missing == 0
    assert outbox["message"].to_list() == [
        "Hi Mei, 2 months and 7 days / 两个月零七天: 10% off — ann (2024-01-23)"
    ]
    assert outbox.row(0, named=True)["channel"] == "sms"


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("Hello\n{{ customer.id }\n", r"'coupon.sms.j2', line 2: unexpected '}'"),
        ("Hello\n\n{{ nmae }}\n", r"'coupon.sms.j2', line 3: unknown field 'nmae'"),
        ("{% include 'other.j2' %}", "includes 'other.j2'"),
    ],
)
def test_template_errors_name_the_template_and_line(tmp_path: Path, text: str, match: str) -> None:
    folder = templates(tmp_path, coupon__sms__j2=text)
    with pytest.raises(WinbackConfigError, match=match):
        load_templates(str(folder))


def test_an_unknown_customer_field_is_found_before_rendering(tmp_path: Path) -> None:
    folder = templates(tmp_path, coupon__sms__j2="a\nb {{ customer.email }}")
    with pytest.raises(WinbackConfigError, match=r"line 2: unknown field customer\.email"):
        render_outbox(
            load_templates(str(folder)),
            DUE.clear(),
            day=date(2024, 3, 30),
            language="en",
            offers={},
        )


def test_the_sandbox_keeps_templates_from_python_internals(tmp_path: Path) -> None:
    folder = templates(
        tmp_path, coupon__sms__j2="{{ customer.id.__class__.__mro__[1].__subclasses__() }}"
    )
    with pytest.raises(WinbackConfigError, match=r"coupon\.sms\.j2.*unsafe"):
        render_outbox(
            load_templates(str(folder)), DUE, day=date(2024, 3, 30), language="en", offers={}
        )


def test_a_badly_named_template_is_refused(tmp_path: Path) -> None:
    folder = templates(tmp_path, coupon__j2="x")
    with pytest.raises(WinbackConfigError, match=r"STRATEGY\.CHANNEL"):
        load_templates(str(folder))


def test_a_bad_template_stops_the_config_before_any_run(tmp_path: Path, sales_file: Path) -> None:
    folder = templates(tmp_path, coupon__sms__j2="{{ nope }}")
    raw = config(tmp_path, sales_file)
    raw["messages"] = {"templates": str(folder)}
    with pytest.raises(WinbackConfigError, match="unknown field 'nope'"):
        Pipeline(raw)
    assert not (tmp_path / "state.db").exists()
    assert not (tmp_path / "out").exists()


def test_the_outbox_of_a_run_with_the_bundled_templates(
    tmp_path: Path, sales_file: Path, database: Database
) -> None:
    raw = config(tmp_path, sales_file, database)
    raw["messages"] = {"templates": "zh", "offers": {"coupon": "九折券"}}
    pipeline = Pipeline(raw)
    assert pipeline.config.language == "zh"
    pipeline.run("2024-03-01")
    result = pipeline.run("2024-03-08")
    assert result.outbox is not None
    assert result.unrendered == 0  # default.letter.j2 serves the strategies without their own
    assert result.outbox.height == result.due.height  # one channel per strategy in the zh set
    written = pl.read_csv(Path(pipeline.config.outputs) / "outbox-2024-03-08.csv")
    assert written["message"].to_list() == result.outbox["message"].to_list()
    sms = result.outbox.filter(pl.col("channel") == "sms")["message"]
    assert sms.len() > 0
    assert all("九折券" in m and ("天" in m or "个月" in m) for m in sms)
    assert not any("month" in m or "day" in m for m in sms)  # the silence in Chinese


def test_every_bundled_template_set_loads() -> None:
    for name in ("en", "zh"):
        assert load_templates(name).sources


def test_dates_and_numbers_in_the_messages_language(tmp_path: Path) -> None:
    """The date, number and money filters (Babel's CLDR data), by hand: the last purchase of
    DUE is 67 days before 2024-03-30, 2024-01-23."""
    folder = templates(
        tmp_path,
        coupon__sms__j2="{{ customer.last_purchase | date }} | {{ customer.last_purchase | "
        "date('short') }} | {{ 1234.5 | number }} | {{ 1234.5 | number(2) }} | "
        "{{ 1234.5 | money('CNY') }} | {{ customer.value | number }}",
    )
    loaded = load_templates(str(folder))
    shown = {
        language: render_outbox(loaded, DUE, day=date(2024, 3, 30), language=language, offers={})[
            0
        ]["message"][0]
        for language in ("en", "zh")
    }
    assert shown["en"] == "January 23, 2024 | 1/23/24 | 1,234.5 | 1,234.50 | CN¥1,234.50 | "
    assert shown["zh"] == "2024年1月23日 | 2024/1/23 | 1,234.5 | 1,234.50 | ¥1,234.50 | "


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("a\n{{ customer.id | date }}", r"'coupon.sms.j2', line 2: date: '0012' is not a date"),
        ("{{ customer.id | number }}", r"line 1: number: '0012' is not a number"),
        ("{{ 1 | money('XXXX') }}", r"line 1: money: 'XXXX'"),
    ],
)
def test_a_filter_given_a_wrong_value_names_the_line(tmp_path: Path, text: str, match: str) -> None:
    folder = templates(tmp_path, coupon__sms__j2=text)
    with pytest.raises(WinbackConfigError, match=match):
        render_outbox(
            load_templates(str(folder)), DUE, day=date(2024, 3, 30), language="en", offers={}
        )


def test_an_unknown_filter_is_found_when_the_templates_load(tmp_path: Path) -> None:
    folder = templates(tmp_path, coupon__sms__j2="a\n\n{{ customer.id | shout }}")
    with pytest.raises(WinbackConfigError, match=r"line 3: No filter named 'shout'"):
        load_templates(str(folder))


def test_the_outbox_is_also_json_lines(tmp_path: Path, sales_file: Path) -> None:
    raw = config(tmp_path, sales_file)
    raw["messages"] = {"templates": "en", "offers": {"*": "10% off"}}
    pipeline = Pipeline(raw)
    pipeline.run("2024-03-01")
    result = pipeline.run("2024-03-08")
    assert result.outbox is not None
    assert result.outbox.height > 0
    out = Path(pipeline.config.outputs)
    lines = (out / "outbox-2024-03-08.jsonl").read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines]
    assert [r["message"] for r in rows] == result.outbox["message"].to_list()
    assert [r["customer_id"] for r in rows] == result.outbox["customer_id"].to_list()
    assert set(rows[0]) == set(result.outbox.columns)
