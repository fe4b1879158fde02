"""The daily loop's configuration (docs/loop.md#the-config-file): the TOML file of
``winback run --config``, parsed and validated up front into a :class:`LoopConfig`, and the
commented example ``winback init`` writes (:data:`EXAMPLE_CONFIG`).

Every mistake is a :class:`~winback.errors.WinbackConfigError` naming the key
(``campaign.holdout``, ``staff.capacity.ann`` …) before any data is read or any state written.
Relative paths (sources, the outputs folder, a SQLite file) are taken from the config file's
folder, so a config runs the same from any working directory.
"""

from __future__ import annotations

import itertools
import math
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from winback._options import (
    AMOUNT_COL,
    CUSTOMER_COL,
    HORIZON_PERIODS,
    LOCK_WAIT_SECONDS,
    MIN_OCCASIONS,
    ON_INVALID,
    PERIOD,
    PRIORITY,
    PRODUCT_COL,
    RECOMMEND_DAMPING,
    RECOMMEND_N,
    RECOMMEND_NEIGHBOURS,
    RESOLUTION,
    S_CUTS,
    TIME_COL,
    TRF_CUTS,
)
from winback.errors import WinbackConfigError
from winback.segments import load_rules, parse_cadence

__all__ = ["DEFAULT_DATABASE_URL", "EXAMPLE_CONFIG", "LoopConfig", "load_config", "parse_config"]

#: The state database when the config names none: a SQLite file next to the config.
DEFAULT_DATABASE_URL = "sqlite:///winback-state.db"

_SECTIONS: dict[str, tuple[str, ...]] = {
    "source": ("paths", "customer_col", "time_col", "amount_col", "on_invalid", "tz"),
    "scoring": ("resolution", "min_occasions", "trf_cuts", "s_cuts"),
    "value": ("enabled", "period", "margin", "horizon"),
    "campaign": (
        "name",
        "length_days",
        "rules",
        "thresholds",
        "strategy_map",
        "cadence",
        "holdout",
        "cool_down_days",
        "max_contacts",
        "evaluation_days",
        "causes",
    ),
    "staff": ("names", "capacity", "reward_per_visit", "reward_revenue_share"),
    "messages": ("templates", "language", "offers", "customers"),
    "outputs": ("dir",),
    "database": ("url", "lock_wait_seconds"),
    "priority": ("kind", "weights", "business_score_col", "business_scores"),
    "recommend": ("enabled", "product_col", "n", "exclude_bought", "neighbours", "damping"),
}
_ON_INVALID = ("raise", "drop", "warn")


@dataclass(frozen=True)
class LoopConfig:
    """A validated loop configuration (see :data:`EXAMPLE_CONFIG` for every key)."""

    sources: tuple[str, ...]
    customer_col: str = CUSTOMER_COL
    time_col: str = TIME_COL
    amount_col: str = AMOUNT_COL
    on_invalid: str = ON_INVALID
    tz: str | None = None
    resolution: str = RESOLUTION
    min_occasions: int = MIN_OCCASIONS
    trf_cuts: tuple[float, ...] = TRF_CUTS
    s_cuts: tuple[float, ...] = S_CUTS
    value: bool = False
    period: str = PERIOD
    margin: float | None = None
    horizon: int = HORIZON_PERIODS
    name: str = "winback"
    length_days: int = 90
    rules: str = "default"
    thresholds: Mapping[str, Any] = field(default_factory=dict)
    strategy_map: str | Mapping[str, str] | None = None
    cadence: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    holdout: float = 0.1
    cool_down_days: int = 30
    max_contacts: int = 3
    evaluation_days: int | None = None
    causes: str | None = None
    staff: tuple[str, ...] | None = None
    capacity: int | Mapping[str, int] | None = None
    reward_per_visit: float = 0.0
    reward_revenue_share: float = 0.0
    templates: str | None = None
    language: str = "en"
    offers: Mapping[str, str] = field(default_factory=dict)
    customers: str | None = None
    outputs: str = "winback-out"
    database_url: str = DEFAULT_DATABASE_URL
    lock_wait_seconds: int = LOCK_WAIT_SECONDS
    # [priority] (docs/methods.md#priority-blend)
    priority: str = PRIORITY
    priority_weights: Mapping[str, float] | None = None
    business_score_col: str | None = None
    business_scores: str | None = None
    # [recommend] (docs/methods.md#recommendations)
    recommend: bool = False
    product_col: str = PRODUCT_COL
    recommend_n: int = RECOMMEND_N
    recommend_exclude_bought: bool = True
    recommend_neighbours: int = RECOMMEND_NEIGHBOURS
    recommend_damping: float = RECOMMEND_DAMPING

    @property
    def window_days(self) -> int:
        """The evaluation window of a campaign, in days after its start."""
        return self.evaluation_days or self.length_days

    def fingerprint(self) -> str:
        """A short hash of the settings, stored with every run (a changed config shows)."""
        import hashlib

        return hashlib.blake2b(repr(self).encode("utf-8"), digest_size=8).hexdigest()


def _fail(key: str, message: str) -> WinbackConfigError:
    return WinbackConfigError(f"config key {key}: {message}")


def _whole(key: str, value: Any, low: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise _fail(key, f"{value!r} must be a whole number ≥ {low}")
    return value


def _text(key: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _fail(key, f"{value!r} must be a non-empty string")
    return value


def _number(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _fail(key, f"{value!r} must be a finite number")
    return float(value)


def _cuts(key: str, value: Any, count: int) -> tuple[float, ...]:
    if not isinstance(value, list) or len(value) != count:
        raise _fail(key, f"{value!r} must be a list of {count} increasing numbers")
    cuts = tuple(_number(key, v) for v in value)
    if any(b <= a for a, b in itertools.pairwise(cuts)):
        raise _fail(key, f"{value!r} must be increasing")
    return cuts


def _resolve(path: str, base: Path) -> str:
    if "://" in path:
        return _database_url(path, base)
    candidate = Path(path).expanduser()
    return str(candidate if candidate.is_absolute() else base / candidate)


def _database_url(url: str, base: Path) -> str:
    """A relative SQLite or DuckDB file (``sqlite:///state.db``, ``duckdb:///sales.duckdb?…``)
    is taken from the config's folder, like every other relative path; other URLs are kept."""
    for prefix in ("sqlite:///", "duckdb:///"):
        if url.startswith(prefix) and not url.startswith(prefix + "/"):
            rest = url[len(prefix) :]
            if rest and rest != ":memory:" and not rest.startswith(("/", ":")):
                return prefix + str(base / rest)
    return url


def parse_config(raw: Mapping[str, Any], *, base: str | Path = ".") -> LoopConfig:
    """A :class:`LoopConfig` from the parsed TOML tables; relative paths resolved from ``base``.

    Examples
    --------
    >>> from winback.loop.config import parse_config
    >>> parse_config({"source": {"paths": ["sales.csv"]}}, base="/data").sources
    ('/data/sales.csv',)
    >>> url = "sqlite:///sales.db?table=sales"  # a relative database file, likewise
    >>> parse_config({"source": {"paths": [url]}}, base="/data").sources
    ('sqlite:////data/sales.db?table=sales',)
    >>> parse_config({"source": {"paths": ["s.csv"]}, "campaign": {"holdout": 1.5}})
    Traceback (most recent call last):
    winback.errors.WinbackConfigError: config key campaign.holdout: 1.5 must be in [0, 1) ...
    """
    folder = Path(base)
    if not isinstance(raw, Mapping):
        raise WinbackConfigError("the config must be a TOML document of tables")
    for section, table in raw.items():
        if section not in _SECTIONS:
            raise _fail(section, f"unknown section (sections: {', '.join(_SECTIONS)})")
        if not isinstance(table, Mapping):
            raise _fail(section, "must be a table [" + section + "]")
        for key in table:
            if key not in _SECTIONS[section]:
                raise _fail(
                    f"{section}.{key}",
                    f"unknown key (keys of [{section}]: {', '.join(_SECTIONS[section])})",
                )
    source = raw.get("source")
    if source is None or "paths" not in source:
        raise _fail("source.paths", "is missing: name the transaction file(s) to read")
    paths = source["paths"]
    if isinstance(paths, str):
        paths = [paths]
    if not isinstance(paths, list) or not paths:
        raise _fail("source.paths", f"{paths!r} must be a file name or a non-empty list of them")
    sources = tuple(_resolve(_text("source.paths", p), folder) for p in paths)
    out: dict[str, Any] = {"sources": sources}
    for key in ("customer_col", "time_col", "amount_col"):
        if key in source:
            out[key] = _text(f"source.{key}", source[key])
    if "on_invalid" in source:
        if source["on_invalid"] not in _ON_INVALID:
            raise _fail(
                "source.on_invalid", f"{source['on_invalid']!r} must be one of raise, drop, warn"
            )
        out["on_invalid"] = source["on_invalid"]
    if "tz" in source:
        out["tz"] = _text("source.tz", source["tz"])

    scoring = raw.get("scoring", {})
    if "resolution" in scoring:
        out["resolution"] = _text("scoring.resolution", scoring["resolution"])
    if "min_occasions" in scoring:
        out["min_occasions"] = _whole("scoring.min_occasions", scoring["min_occasions"], 2)
    if "trf_cuts" in scoring:
        out["trf_cuts"] = _cuts("scoring.trf_cuts", scoring["trf_cuts"], 4)
    if "s_cuts" in scoring:
        out["s_cuts"] = _cuts("scoring.s_cuts", scoring["s_cuts"], 2)

    value = raw.get("value", {})
    if "enabled" in value:
        if not isinstance(value["enabled"], bool):
            raise _fail("value.enabled", f"{value['enabled']!r} must be true or false")
        out["value"] = value["enabled"]
    if "period" in value:
        out["period"] = _text("value.period", value["period"])
    if "margin" in value:
        margin = _number("value.margin", value["margin"])
        if not 0 <= margin <= 1:
            raise _fail("value.margin", f"{margin!r} must be in [0, 1]")
        out["margin"] = margin
    if "horizon" in value:
        out["horizon"] = _whole("value.horizon", value["horizon"], 1)

    _campaign(raw.get("campaign", {}), out, folder)
    _staff(raw.get("staff", {}), out)
    _messages(raw.get("messages", {}), out, folder)
    _priority(raw.get("priority", {}), out, folder)
    _recommend(raw.get("recommend", {}), out)
    if "dir" in raw.get("outputs", {}):
        out["outputs"] = _resolve(_text("outputs.dir", raw["outputs"]["dir"]), folder)
    else:
        out["outputs"] = str(folder / "winback-out")
    url = raw.get("database", {}).get("url", DEFAULT_DATABASE_URL)
    out["database_url"] = _database_url(_text("database.url", url), folder)
    if "lock_wait_seconds" in raw.get("database", {}):
        wait = raw["database"]["lock_wait_seconds"]
        out["lock_wait_seconds"] = _whole("database.lock_wait_seconds", wait)
    return LoopConfig(**out)


def _campaign(table: Mapping[str, Any], out: dict[str, Any], folder: Path) -> None:
    if "name" in table:
        name = _text("campaign.name", table["name"])
        if any(c in name for c in "\x00\n\r"):
            raise _fail("campaign.name", f"{name!r} must be one line of text")
        out["name"] = name
    if "length_days" in table:
        out["length_days"] = _whole("campaign.length_days", table["length_days"], 1)
    if "holdout" in table:
        holdout = _number("campaign.holdout", table["holdout"])
        if not 0 <= holdout < 1:
            raise _fail(
                "campaign.holdout",
                f"{table['holdout']!r} must be in [0, 1) ... the share kept uncontacted as the "
                "control arm (0.1 = 10 %)",
            )
        out["holdout"] = holdout
    if "cool_down_days" in table:
        out["cool_down_days"] = _whole("campaign.cool_down_days", table["cool_down_days"])
    if "max_contacts" in table:
        out["max_contacts"] = _whole("campaign.max_contacts", table["max_contacts"], 1)
    if "evaluation_days" in table:
        out["evaluation_days"] = _whole("campaign.evaluation_days", table["evaluation_days"], 1)
    if "causes" in table:
        out["causes"] = _resolve(_text("campaign.causes", table["causes"]), folder)
    thresholds = table.get("thresholds", {})
    if not isinstance(thresholds, Mapping):
        raise _fail("campaign.thresholds", "must be a table name = value")
    out["thresholds"] = dict(thresholds)
    rules_name = _text("campaign.rules", table.get("rules", "default"))
    rules_path = rules_name if rules_name.endswith(".toml") else None
    if rules_path is not None:
        rules_name = _resolve(rules_path, folder)
    try:
        rules = load_rules(rules_name, thresholds=out["thresholds"] or None)
    except WinbackConfigError as exc:
        raise _fail("campaign.rules", str(exc)) from None
    if rules.campaign is None:
        raise _fail("campaign.rules", f"{rules.source} has no [campaign] table to select targets")
    out["rules"] = rules_name
    labels = rules.classifier(rules.campaign.segment).labels
    if "cadence" in table:
        if not isinstance(table["cadence"], Mapping):
            raise _fail("campaign.cadence", "must be a table segment = days or [min, max]")
        cadence = parse_cadence(table["cadence"], where="config key campaign.cadence")
        for label in cadence:
            if label not in labels and label != "*":
                raise _fail(
                    f"campaign.cadence.{label}",
                    f"{rules.source} never labels a segment {label!r} "
                    f"(segments: {', '.join(labels)}; '*' for any other)",
                )
        out["cadence"] = cadence
    if "strategy_map" in table:
        strategy = table["strategy_map"]
        if isinstance(strategy, Mapping):
            bad = [k for k, v in strategy.items() if not isinstance(v, str) or not v]
            if bad:
                raise _fail(f"campaign.strategy_map.{bad[0]}", "must be a strategy name")
            unknown = [k for k in strategy if k not in labels and k != "*"]
            if unknown:
                raise _fail(
                    f"campaign.strategy_map.{unknown[0]}",
                    f"{rules.source} never labels a segment {unknown[0]!r} "
                    f"(segments: {', '.join(labels)}; '*' for any other)",
                )
            out["strategy_map"] = dict(strategy)
        else:
            name = _text("campaign.strategy_map", strategy)
            if name.endswith(".toml"):
                name = _resolve(name, folder)
            try:
                load_rules(name).classifier("strategy")
            except WinbackConfigError as exc:
                raise _fail("campaign.strategy_map", str(exc)) from None
            out["strategy_map"] = name


def _messages(table: Mapping[str, Any], out: dict[str, Any], folder: Path) -> None:
    from winback.loop.messages import BUNDLED, load_templates
    from winback.loop.silence_words import LANGUAGES

    if "language" in table:
        if table["language"] not in LANGUAGES:
            raise _fail(
                "messages.language", f"{table['language']!r} must be one of {', '.join(LANGUAGES)}"
            )
        out["language"] = table["language"]
    offers = table.get("offers", {})
    if not isinstance(offers, Mapping):
        raise _fail("messages.offers", "must be a table strategy = offer text ('*' for the rest)")
    for strategy, text in offers.items():
        _text(f"messages.offers.{strategy}", text)
    out["offers"] = dict(offers)
    if "customers" in table:
        out["customers"] = _resolve(_text("messages.customers", table["customers"]), folder)
    if "templates" in table:
        name = _text("messages.templates", table["templates"])
        templates = name if name in BUNDLED else _resolve(name, folder)
        load_templates(templates)  # syntax and unknown names: refused with the config
        out["templates"] = templates
        if name in BUNDLED and "language" not in table:
            out["language"] = name  # the bundled set's own language
    elif len(table):
        raise _fail("messages.templates", "is missing: name a folder of templates, or en / zh")


def _staff(table: Mapping[str, Any], out: dict[str, Any]) -> None:
    names = table.get("names")
    for key in ("reward_per_visit", "reward_revenue_share"):
        if key in table:
            reward = _number(f"staff.{key}", table[key])
            if reward < 0:
                raise _fail(f"staff.{key}", f"{table[key]!r} must be ≥ 0")
            out[key] = float(reward)
    if names is None:
        for key in ("capacity", "reward_per_visit", "reward_revenue_share"):
            if key in table:
                raise _fail(f"staff.{key}", "needs staff.names: it is per staff member")
        return
    if not isinstance(names, list) or not names:
        raise _fail("staff.names", f"{names!r} must be a non-empty list of names")
    checked = [_text("staff.names", n) for n in names]
    twice = [n for n in checked if checked.count(n) > 1]
    if twice:
        raise _fail("staff.names", f"lists {twice[0]!r} twice")
    out["staff"] = tuple(checked)
    if "capacity" not in table:
        return
    capacity = table["capacity"]
    if isinstance(capacity, Mapping):
        for name, cap in capacity.items():
            if name not in checked:
                raise _fail(f"staff.capacity.{name}", "is not in staff.names")
            _whole(f"staff.capacity.{name}", cap)
        if sum(capacity.values()) == 0:
            raise _fail("staff.capacity", "the total capacity is 0: nobody can be contacted")
        out["capacity"] = dict(capacity)
    else:
        out["capacity"] = _whole("staff.capacity", capacity, 1)


def _priority(table: Mapping[str, Any], out: dict[str, Any], folder: Path) -> None:
    """``[priority]``: the campaign's order and the blend weights (docs/methods.md#priority-blend),
    checked here as :func:`winback.campaign` checks them, naming the key."""
    from winback.campaign import PRIORITY_COMPONENTS

    kind = table.get("kind", PRIORITY)
    if kind not in ("group", "lapse_value", "blend"):
        raise _fail("priority.kind", f"{kind!r} must be one of group, lapse_value, blend")
    out["priority"] = kind
    if "business_score_col" in table:
        out["business_score_col"] = _text(
            "priority.business_score_col", table["business_score_col"]
        )
        if "business_scores" not in table:
            raise _fail(
                "priority.business_scores",
                "is missing: name the file of customer_id and the business score column",
            )
    if "business_scores" in table:
        if "business_score_col" not in table:
            raise _fail("priority.business_score_col", "is missing: name the score column")
        out["business_scores"] = _resolve(
            _text("priority.business_scores", table["business_scores"]), folder
        )
    if "weights" not in table:
        return
    weights = table["weights"]
    if kind != "blend":
        raise _fail("priority.weights", f'is read only with kind = "blend" (kind is {kind!r})')
    if not isinstance(weights, Mapping) or not weights:
        raise _fail("priority.weights", "must be a table component = weight")
    for name, weight in weights.items():
        if name not in PRIORITY_COMPONENTS:
            raise _fail(
                f"priority.weights.{name}",
                f"unknown component (components: {', '.join(PRIORITY_COMPONENTS)})",
            )
        if _number(f"priority.weights.{name}", weight) < 0:
            raise _fail(f"priority.weights.{name}", f"{weight!r} must be ≥ 0")
    if sum(float(w) for w in weights.values()) <= 0:
        raise _fail("priority.weights", "the weights sum to 0; give one component a weight")
    business = float(weights.get("business", 0))
    if business > 0 and "business_score_col" not in out:
        raise _fail("priority.weights.business", "needs priority.business_score_col")
    if business == 0 and "business_score_col" in out:
        raise _fail(
            "priority.weights.business",
            "is 0 (or missing) but priority.business_score_col is given; give it a weight",
        )
    out["priority_weights"] = {k: float(v) for k, v in weights.items()}


def _recommend(table: Mapping[str, Any], out: dict[str, Any]) -> None:
    """``[recommend]``: product recommendations on the target list and in the messages
    (docs/methods.md#recommendations)."""
    for key, name in (("enabled", "recommend"), ("exclude_bought", "recommend_exclude_bought")):
        if key in table:
            if not isinstance(table[key], bool):
                raise _fail(f"recommend.{key}", f"{table[key]!r} must be true or false")
            out[name] = table[key]
    if "product_col" in table:
        out["product_col"] = _text("recommend.product_col", table["product_col"])
    if "n" in table:
        out["recommend_n"] = _whole("recommend.n", table["n"], 1)
    if "neighbours" in table:
        out["recommend_neighbours"] = _whole("recommend.neighbours", table["neighbours"], 1)
    if "damping" in table:
        damping = _number("recommend.damping", table["damping"])
        if not 0 <= damping <= 1:
            raise _fail("recommend.damping", f"{damping!r} must be in [0, 1]")
        out["recommend_damping"] = damping


def load_config(path: str | os.PathLike[str]) -> LoopConfig:
    """Reads and validates a loop config file (TOML, UTF-8)."""
    file = Path(path)
    try:
        text = file.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise WinbackConfigError(
            f"config {str(file)!r} does not exist; `winback init` writes an example"
        ) from None
    except UnicodeDecodeError as exc:
        raise WinbackConfigError(f"config {str(file)!r} is not UTF-8 (byte {exc.start})") from None
    except OSError as exc:
        raise WinbackConfigError(f"config {str(file)!r} cannot be read ({exc.strerror})") from None
    try:
        raw = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, RecursionError) as exc:
        raise WinbackConfigError(f"config {str(file)!r} is not valid TOML ({exc})") from None
    return parse_config(raw, base=file.resolve().parent)


#: What ``winback init`` writes: every key, commented, with its default.
EXAMPLE_CONFIG = """\
# winback daily loop (docs/loop.md). Run it every day:  winback run --config winback.toml
# Relative paths are read from this file's folder.

[source]
paths = ["sales.parquet"]        # transaction file(s) or globs: Parquet, CSV, IPC
# customer_col = "customer_id"
# time_col = "ts"
# amount_col = "amount"
# on_invalid = "raise"           # raise | drop | warn (docs/methods.md#invalid-rows-and-hygiene)
# tz = "Europe/Berlin"

[scoring]                        # docs/methods.md#silence
# resolution = "1d"
# min_occasions = 2
# trf_cuts = [0.4, 0.6, 0.8, 0.95]
# s_cuts = [1.0, 2.0]

[value]                          # docs/methods.md#value: adds value tiers and the CLV
enabled = false
# period = "month"
# margin = 0.3
# horizon = 12

[campaign]
name = "winback"                 # campaigns are named NAME-YYYY-MM-DD (their first day)
length_days = 90                 # a campaign's life: arms and staff are kept this long
rules = "default"                # selection: default, salon, auto_dealer or a .toml file
# thresholds = { min_s = 1.0 }   # override the rules' thresholds
# strategy_map = "strategy"      # a rules file, or a table { group_e = "call", "*" = "mail" };
#                                # "cause_matrix": why they left × value (methods.md#cause-matrix)
# causes = "causes.csv"          # customer_id, cause (product_problem, moved, competitor …)
# cadence = { group_e = 1, group_d = 3, silent = 7 }   # days between contacts, by segment
holdout = 0.1                    # share kept uncontacted (the control arm)
cool_down_days = 30              # a customer contacted this recently is not targeted again
max_contacts = 3                 # contacts per target in a campaign (first + follow-ups)
# evaluation_days = 90           # the evaluation window after the start (default: length_days)

[staff]
# names = ["ann", "bo"]
# capacity = 200                 # or { ann = 120, bo = 80 }
# reward_per_visit = 20          # the scorecards' reward: per visit of a reactivated target …
# reward_revenue_share = 0.05    # … and/or a share of their revenue (scorecards-DAY.csv)

[messages]                       # contact messages (docs/loop.md#contact-messages)
# templates = "en"               # a folder of STRATEGY.CHANNEL.j2 templates, or the bundled en / zh
# language = "en"                # the silence in words: en ("2 months and 7 days") or zh
# offers = { coupon = "10% off your next visit", "*" = "" }
# customers = "customers.csv"    # customer_id plus fields the templates use (name, email …)

[priority]                       # the list's order (docs/methods.md#priority-blend)
# kind = "group"                 # group | lapse_value (p_lapse × value) | blend
# weights = { p_lapse = 0.5, value = 0.3, business = 0.2 }   # blend only; normalised to sum 1
# business_score_col = "expert_score"   # the business's own score (higher = contact sooner) …
# business_scores = "scores.csv"        # … read from this file (customer_id, expert_score)

[recommend]                      # products for each target (docs/methods.md#recommendations)
# enabled = false                # needs a product id on every transaction row
# product_col = "product_id"
# n = 10                         # products per target; templates: customer.recommended_products
# exclude_bought = true          # leave out what the customer already bought
# neighbours = 50                # similar products kept per product
# damping = 0.5                  # 0: P(j | i) … 0.5: cosine

[outputs]
dir = "winback-out"              # targets-YYYY-MM-DD.csv, due-YYYY-MM-DD.csv

[database]
url = "sqlite:///winback-state.db"   # the state: a SQLite file, or PostgreSQL (pip install
# 'winback[postgres]'): url = "postgresql://winback@db.example/winback" (the password from
# PGPASSWORD or ~/.pgpass rather than in this file)
# lock_wait_seconds = 30         # how long a run waits for another one on the same database
"""
