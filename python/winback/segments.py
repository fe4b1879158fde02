"""Rule-based classes from a declarative TOML rules file (docs/methods.md#rules).

A rules file holds *classifiers*. Each classifier writes one output column whose value is the label
of the first of its rules that matches a customer (first match wins), or its ``default``. Rules are
predicates over any column of the scored table — :func:`winback.silence`, :func:`winback.rfm`,
:func:`winback.quadrant` or :func:`winback.value` outputs, or columns of your own — and are
compiled to Polars expressions: nothing in the file is ever evaluated as Python.

The format (``format = 1``)::

    name = "salon"                          # optional: shown in messages
    description = "..."                     # optional

    [thresholds]                            # optional: named values, used as "$name" below and
    active_days = 30                        # editable without copying the file:
                                            # load_rules("salon", thresholds={"active_days": 45})

    [[classifier]]                          # one or more
    column = "visit_recency"                # the output column (a new one, see below)
    inputs = ["recency_days"]               # every column the rules read
    default = "over_three_months"           # label when no rule matches (omit: null)
    # replace = true                        # optional: overwrite the column if the table has it
    rules = [                               # in order; first match wins
      { label = "active", when = { recency_days = { le = "$active_days" } } },
      { label = "lapsed", when = [ { recency_days = { gt = 90 } },          # a list of tables:
                                   { visit_rate = { eq = "lost" } } ] },    # any of them (OR)
    ]

    [campaign]                              # optional: how winback.campaign uses the file
    segment = "visit_recency"               # the classifier whose label is the target segment
    exclude = ["active"]                    # labels that are not targeted
    cadence = { lapsed = 7, over_three_months = [15, 30] }   # days to the next contact

``when`` is a table ``{ column = { operator = value, … }, … }`` — every condition must hold (AND) —
or a list of such tables, any of which may hold (OR); an empty table always matches. Operators:
``eq``, ``ne``, ``lt``, ``le``, ``gt``, ``ge`` (numbers, strings, dates; on an Enum column such as
``rank_ratio_group`` the order is the category order, a < … < e), ``in`` and ``not_in`` (a list),
``is_null`` (true/false). A comparison with a null value never matches. Values are TOML numbers,
strings, booleans or dates, or ``"$name"`` for a threshold. A rule may carry ``if_columns = [...]``:
it applies only when the table has all those columns (how a preset uses optional inputs such as
``cause`` or ``expected_value``). A classifier may read the columns of the classifiers before it.
Numbers must be finite: ``nan`` and ``inf`` (valid TOML) are refused, in rules and thresholds alike.

A classifier never overwrites a column silently: when the table already has its output ``column``,
classifying is an error unless the classifier says ``replace = true``. The key columns
(:data:`KEY_COLUMNS`: ``customer_id`` and the scores :func:`winback.campaign` reads, such as
``rank_ratio_group``, ``silence_score`` and ``recency_days``) can never be written by a rules file,
even with ``replace = true``.

Any problem — invalid TOML, an unknown key, a bad operator, a threshold of the wrong type, a column
the table does not have — raises :class:`~winback.WinbackConfigError` naming the file, the
classifier, the rule and its line.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import polars as pl

from winback import _io
from winback.errors import WinbackConfigError
from winback.rfm import check_unique_customers

__all__ = [
    "KEY_COLUMNS",
    "OPERATORS",
    "CampaignSpec",
    "Classifier",
    "Condition",
    "Rule",
    "RuleSet",
    "classify",
    "load_rules",
    "parse_rules",
    "presets",
]

#: Columns a rules file can never write, even with ``replace = true``: the customer id and the
#: scores :func:`winback.campaign` reads (selection, priority, value level, quadrant, strategy), so
#: a classifier cannot change whom a campaign targets behind its back (docs/methods.md#rules).
KEY_COLUMNS = (
    "customer_id",
    "status",
    "rank_ratio_group",
    "silence_score",
    "silence_band",
    "recency_days",
    "last_ts",
    "n_occasions",
    "tenure_days",
    "total_amount",
    "rfm_monetary",
    "rfm_segment",
    "quadrant",
    "p_alive",
    "expected_value",
    "clv",
    "value_tier",
    "value_level",
)
#: Comparison operators of a rule's ``when`` table.
OPERATORS = ("eq", "ne", "lt", "le", "gt", "ge", "in", "not_in", "is_null")
_TOP_KEYS = ("format", "name", "description", "thresholds", "classifier", "campaign")
_CLASSIFIER_KEYS = ("column", "description", "inputs", "default", "rules", "replace")
_RULE_KEYS = ("label", "when", "if_columns", "description")
_CAMPAIGN_KEYS = ("segment", "exclude", "cadence", "description")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_LABEL_LINE = re.compile(r"(?:^|[{,\s])label\s*=")
_SCALAR = (bool, int, float, str, date)


@dataclass(frozen=True)
class Condition:
    """``column <op> value``; ``value`` may be ``"$name"``, a threshold of the rule set."""

    column: str
    op: str
    value: Any


@dataclass(frozen=True)
class Rule:
    """One rule: ``label`` when any of ``any_of`` (each a conjunction of conditions) holds."""

    label: str
    any_of: tuple[tuple[Condition, ...], ...]
    if_columns: tuple[str, ...] = ()
    line: int | None = None
    description: str | None = None


@dataclass(frozen=True)
class Classifier:
    """Rules writing one output ``column``; first match wins, else ``default``."""

    column: str
    inputs: tuple[str, ...]
    rules: tuple[Rule, ...]
    default: str | None = None
    line: int | None = None
    description: str | None = None
    replace: bool = False

    @property
    def labels(self) -> tuple[str, ...]:
        """Every label the classifier can write, in rule order, then the default."""
        found = [r.label for r in self.rules]
        if self.default is not None:
            found.append(self.default)
        return tuple(dict.fromkeys(found))


@dataclass(frozen=True)
class CampaignSpec:
    """The ``[campaign]`` table: segment classifier, excluded labels and follow-up cadence
    (label → (min_days, max_days))."""

    segment: str
    exclude: tuple[str, ...] = ()
    cadence: Mapping[str, tuple[int, int]] = field(default_factory=dict)


@dataclass(frozen=True)
class RuleSet:
    """A parsed, validated rules file (see the module documentation for the format)."""

    name: str
    source: str
    classifiers: tuple[Classifier, ...]
    thresholds: Mapping[str, Any] = field(default_factory=dict)
    campaign: CampaignSpec | None = None
    description: str = ""

    def with_thresholds(self, thresholds: Mapping[str, Any] | None) -> RuleSet:
        """A copy with some thresholds replaced; names must exist and keep their kind."""
        if not thresholds:
            return self
        merged = dict(self.thresholds)
        for name, value in thresholds.items():
            if name not in merged:
                known = ", ".join(merged) or "none"
                raise WinbackConfigError(
                    f"{self.source}: no threshold {name!r} to override (thresholds: {known})"
                )
            if _non_finite(value):
                raise WinbackConfigError(
                    f"{self.source}: threshold {name!r} = {value!r} is not a finite number; "
                    "NaN would match every comparison and inf every bound"
                )
            if _kind(value) != _kind(merged[name]):
                raise WinbackConfigError(
                    f"{self.source}: threshold {name!r} is a {_kind(merged[name])}, so "
                    f"{value!r} ({_kind(value)}) cannot replace it"
                )
            merged[name] = value
        return replace(self, thresholds=merged)

    def classifier(self, column: str) -> Classifier:
        """The classifier writing ``column``."""
        for item in self.classifiers:
            if item.column == column:
                return item
        raise WinbackConfigError(f"{self.source}: no classifier writes column {column!r}")

    def apply(self, frame: pl.DataFrame) -> pl.DataFrame:
        """``frame`` with every classifier's column added (Enum of its labels), in order."""
        out = frame
        for item in self.classifiers:
            if item.column in frame.columns and not item.replace:
                raise _Where(self.source, None).error(
                    f"the table already has a column {item.column!r}; the classifier would "
                    "overwrite it. Name the output column differently, drop the column first, or "
                    "set replace = true in the classifier to overwrite it on purpose",
                    column=item.column,
                    line=item.line,
                )
            expr = _compile(item, out.schema, self)
            out = out.with_columns(expr.alias(item.column))
        return out


def _non_finite(value: Any) -> bool:
    """Whether ``value`` (or an item of a list) is a NaN or infinite float."""
    if isinstance(value, list):
        return any(_non_finite(v) for v in value)
    return isinstance(value, float) and not math.isfinite(value)


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, date):
        return "date"
    if isinstance(value, list):
        return "list"
    return type(value).__name__


class _Where:
    """Builds "file: classifier 'x', rule 'y' (line n)" prefixes for messages."""

    def __init__(self, source: str, rule_lines: list[int] | None) -> None:
        self.source = source
        self.rule_lines = rule_lines

    def line_of(self, index: int) -> int | None:
        if self.rule_lines is None or index >= len(self.rule_lines):
            return None
        return self.rule_lines[index]

    def error(
        self,
        message: str,
        *,
        column: str | None = None,
        rule: Rule | None = None,
        label: str | None = None,
        line: int | None = None,
    ) -> WinbackConfigError:
        parts = [self.source]
        if column is not None:
            parts.append(f"classifier {column!r}")
        name = rule.label if rule is not None else label
        if name is not None:
            parts.append(f"rule {name!r}")
        where = ", ".join(parts)
        line = rule.line if rule is not None and line is None else line
        if line is not None:
            where += f" (line {line})"
        return WinbackConfigError(f"{where}: {message}")


def _rule_lines(text: str, expected: int) -> list[int] | None:
    lines = []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.split("#", 1)[0] if not line.lstrip().startswith("#") else ""
        lines.extend([number] * len(_LABEL_LINE.findall(stripped)))
    return lines if len(lines) == expected else None


def _classifier_lines(text: str) -> list[int]:
    pattern = re.compile(r"^\s*\[\[\s*classifier\s*\]\]")
    return [n for n, line in enumerate(text.splitlines(), start=1) if pattern.match(line)]


def _check_keys(table: Mapping[str, Any], allowed: Sequence[str], what: str, err: Any) -> None:
    for key in table:
        if key not in allowed:
            raise err(f"unknown key {key!r} in {what}; allowed keys: {', '.join(allowed)}")


def _check_value(value: Any, op: str, thresholds: Mapping[str, Any], fail: Any) -> None:
    if isinstance(value, str) and value.startswith("$"):
        name = value[1:]
        if name not in thresholds:
            known = ", ".join(thresholds) or "none defined"
            raise fail(f"threshold {value!r} is not defined in [thresholds] ({known})")
        value = thresholds[name]
    if _non_finite(value):
        raise fail(f"{op} {value!r} is not a finite number; use a finite bound (or is_null)")
    if op == "is_null":
        if not isinstance(value, bool):
            raise fail(f"is_null takes true or false, not {value!r}")
    elif op in ("in", "not_in"):
        if not isinstance(value, list) or not value:
            raise fail(f"{op} takes a non-empty list of values, not {value!r}")
        for item in value:
            if not isinstance(item, _SCALAR):
                raise fail(f"{op} list holds {item!r}; use numbers, strings, booleans or dates")
    elif not isinstance(value, _SCALAR):
        raise fail(f"{op} takes one number, string, boolean or date, not {_kind(value)} {value!r}")


def _parse_conditions(
    when: Any, inputs: tuple[str, ...], thresholds: Mapping[str, Any], fail: Any
) -> tuple[tuple[Condition, ...], ...]:
    tables = when if isinstance(when, list) else [when]
    if isinstance(when, list) and not when:
        raise fail("'when' is an empty list; give at least one table of conditions")
    alternatives = []
    for table in tables:
        if not isinstance(table, dict):
            raise fail(f"'when' must be a table {{ column = {{ op = value }} }}, not {table!r}")
        conditions = []
        for column, tests in table.items():
            if column not in inputs:
                raise fail(
                    f"column {column!r} is not listed in the classifier's inputs "
                    f"({', '.join(inputs)})"
                )
            if not isinstance(tests, dict) or not tests:
                raise fail(
                    f"condition on {column!r} must be a table like {{ le = 30 }}, not {tests!r}"
                )
            for op, value in tests.items():
                if op not in OPERATORS:
                    raise fail(
                        f"bad operator {op!r} on column {column!r}; operators: "
                        f"{', '.join(OPERATORS)}"
                    )
                _check_value(value, op, thresholds, fail)
                conditions.append(Condition(column, op, value))
        alternatives.append(tuple(conditions))
    return tuple(alternatives)


def _str_list(value: Any, what: str, fail: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise fail(f"{what} must be a list of column names or labels, not {value!r}")
    return tuple(value)


def parse_rules(text: str, *, source: str = "<rules>") -> RuleSet:
    """Parses and validates the text of a rules file (see the module documentation)."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise WinbackConfigError(f"{source}: not valid TOML: {exc}") from exc
    top = _Where(source, None)

    def fail_top(message: str) -> WinbackConfigError:
        return top.error(message)

    _check_keys(raw, _TOP_KEYS, "the file", fail_top)
    if raw.get("format", 1) != 1:
        raise fail_top(f"format = {raw['format']!r} is not supported; this winback reads format 1")
    thresholds = raw.get("thresholds", {})
    if not isinstance(thresholds, dict):
        raise fail_top("[thresholds] must be a table of name = value")
    for name, value in thresholds.items():
        ok = isinstance(value, _SCALAR) or (
            isinstance(value, list) and all(isinstance(v, _SCALAR) for v in value)
        )
        if not ok:
            raise fail_top(
                f"threshold {name!r} = {value!r} must be a number, string, boolean, "
                "date or a list of them"
            )
        if _non_finite(value):
            raise fail_top(
                f"threshold {name!r} = {value!r} is not a finite number; NaN would match every "
                "comparison and inf every bound"
            )
    classifiers_raw = raw.get("classifier")
    if not isinstance(classifiers_raw, list) or not classifiers_raw:
        raise fail_top("the file defines no classifier; add at least one [[classifier]] table")
    expected = sum(
        len(c.get("rules", []))
        for c in classifiers_raw
        if isinstance(c, dict) and isinstance(c.get("rules"), list)
    )
    where = _Where(source, _rule_lines(text, expected))
    header_lines = _classifier_lines(text)
    classifiers: list[Classifier] = []
    rule_index = 0
    for position, item in enumerate(classifiers_raw):
        line = header_lines[position] if len(header_lines) == len(classifiers_raw) else None
        classifier = _parse_classifier(
            item, f"#{position + 1}", line, where, rule_index, thresholds, classifiers
        )
        rule_index += len(classifier.rules)
        classifiers.append(classifier)
    campaign = _parse_campaign(raw.get("campaign"), classifiers, fail_top)
    name = raw.get("name", Path(source).stem)
    return RuleSet(
        name=str(name),
        source=source,
        classifiers=tuple(classifiers),
        thresholds=dict(thresholds),
        campaign=campaign,
        description=str(raw.get("description", "")),
    )


def _parse_classifier(
    item: Any,
    ordinal: str,
    line: int | None,
    where: _Where,
    first_rule: int,
    thresholds: Mapping[str, Any],
    earlier: list[Classifier],
) -> Classifier:
    column = item.get("column") if isinstance(item, dict) else None
    name = column if isinstance(column, str) else ordinal

    def fail(message: str) -> WinbackConfigError:
        return where.error(message, column=name, line=line)

    if not isinstance(item, dict):
        raise fail("a classifier must be a table")
    _check_keys(item, _CLASSIFIER_KEYS, "a classifier", fail)
    if not isinstance(column, str) or not _IDENTIFIER.match(column):
        raise fail(f"'column' must name the output column (letters, digits, _), not {column!r}")
    if any(c.column == column for c in earlier):
        raise fail(f"two classifiers write column {column!r}")
    if column in KEY_COLUMNS:
        raise fail(
            f"column {column!r} is a key column winback reads ({', '.join(KEY_COLUMNS)}); a "
            "rules file never writes it, even with replace = true — name the output column "
            "differently"
        )
    replace_column = item.get("replace", False)
    if not isinstance(replace_column, bool):
        raise fail(f"'replace' must be true or false, not {replace_column!r}")
    inputs = _str_list(item.get("inputs"), "'inputs'", fail)
    default = item.get("default")
    if default is not None and (not isinstance(default, str) or not default):
        raise fail(f"'default' must be a label (a string), not {default!r}")
    rules_raw = item.get("rules")
    if not isinstance(rules_raw, list) or not rules_raw:
        raise fail("'rules' must be a non-empty list of rules")
    rules = [
        _parse_rule(
            raw_rule, f"#{i + 1}", where.line_of(first_rule + i), column, inputs, thresholds, where
        )
        for i, raw_rule in enumerate(rules_raw)
    ]
    return Classifier(
        column, inputs, tuple(rules), default, line, item.get("description"), replace_column
    )


def _parse_rule(
    raw_rule: Any,
    ordinal: str,
    line: int | None,
    column: str,
    inputs: tuple[str, ...],
    thresholds: Mapping[str, Any],
    where: _Where,
) -> Rule:
    label = raw_rule.get("label") if isinstance(raw_rule, dict) else None
    shown = label if isinstance(label, str) and label else ordinal

    def fail(message: str) -> WinbackConfigError:
        return where.error(message, column=column, label=shown, line=line)

    if not isinstance(raw_rule, dict):
        raise fail("a rule must be a table { label = ..., when = ... }")
    _check_keys(raw_rule, _RULE_KEYS, "a rule", fail)
    if not isinstance(label, str) or not label:
        raise fail(f"'label' must be a non-empty string, not {label!r}")
    if_columns = _str_list(raw_rule.get("if_columns", []), "'if_columns'", fail)
    unknown = [c for c in if_columns if c not in inputs]
    if unknown:
        raise fail(f"if_columns names {unknown[0]!r}, which is not in the inputs")
    any_of = _parse_conditions(raw_rule.get("when", {}), inputs, thresholds, fail)
    return Rule(label, any_of, if_columns, line, raw_rule.get("description"))


def _parse_cadence(value: Any, label: str, fail: Any) -> tuple[int, int]:
    def whole(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and v >= 0

    if whole(value):
        return (value, value)
    pair = isinstance(value, list) and len(value) == 2 and all(whole(v) for v in value)
    if pair and value[0] <= value[1]:
        return (value[0], value[1])
    raise fail(
        f"[campaign] cadence for {label!r} must be whole days ≥ 0 or [min, max], not {value!r}"
    )


def parse_cadence(
    cadence: Mapping[str, Any], *, where: str = "cadence"
) -> dict[str, tuple[int, int]]:
    """Validates a cadence table (label → days or ``(min, max)`` days)."""

    def fail(message: str) -> WinbackConfigError:
        return WinbackConfigError(message.replace("[campaign] cadence", where))

    out = {}
    for label, value in cadence.items():
        out[str(label)] = _parse_cadence(
            list(value) if isinstance(value, tuple) else value, str(label), fail
        )
    return out


def _parse_campaign(raw: Any, classifiers: list[Classifier], fail: Any) -> CampaignSpec | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise fail("[campaign] must be a table")
    _check_keys(raw, _CAMPAIGN_KEYS, "[campaign]", fail)
    segment = raw.get("segment")
    columns = [c.column for c in classifiers]
    if segment not in columns:
        raise fail(
            f"[campaign] segment = {segment!r} must name a classifier column ({', '.join(columns)})"
        )
    labels = next(c.labels for c in classifiers if c.column == segment)
    exclude = _str_list(raw.get("exclude", []), "[campaign] exclude", fail)
    for label in exclude:
        if label not in labels:
            raise fail(
                f"[campaign] exclude lists {label!r}, which classifier {segment!r} never "
                f"writes (labels: {', '.join(labels)})"
            )
    cadence_raw = raw.get("cadence", {})
    if not isinstance(cadence_raw, dict):
        raise fail("[campaign] cadence must be a table label = days")
    cadence = {}
    for label, value in cadence_raw.items():
        if label not in labels and label != "*":
            raise fail(
                f"[campaign] cadence names {label!r}, which classifier {segment!r} never "
                f"writes (labels: {', '.join(labels)})"
            )
        cadence[label] = _parse_cadence(value, label, fail)
    return CampaignSpec(segment=str(segment), exclude=exclude, cadence=cadence)


def presets() -> tuple[str, ...]:
    """Names of the rules files shipped with winback (``winback/rules/*.toml``)."""
    folder = resources.files("winback").joinpath("rules")
    return tuple(sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml")))


def load_rules(
    rules: str | Path | RuleSet, *, thresholds: Mapping[str, Any] | None = None
) -> RuleSet:
    """A rule set from a preset name (``"salon"``, ``"auto_dealer"``, ``"default"``,
    ``"strategy"``), a ``.toml`` path, or a :class:`RuleSet`, with ``thresholds`` overridden."""
    if isinstance(rules, RuleSet):
        return rules.with_thresholds(thresholds)
    if not isinstance(rules, str | Path):
        raise WinbackConfigError(
            f"rules must be a preset name, a .toml path or a RuleSet, not {type(rules).__name__}"
        )
    text_name = str(rules)
    if isinstance(rules, str) and text_name in presets():
        resource = resources.files("winback").joinpath("rules", f"{text_name}.toml")
        parsed = parse_rules(resource.read_text(encoding="utf-8"), source=f"{text_name}.toml")
        return parsed.with_thresholds(thresholds)
    path = Path(rules)
    if not path.is_file():
        raise WinbackConfigError(
            f"rules {text_name!r} is neither a preset ({', '.join(presets())}) nor an existing "
            ".toml file"
        )
    parsed = parse_rules(path.read_text(encoding="utf-8"), source=str(path))
    return parsed.with_thresholds(thresholds)


def _value_fits(value: Any, dtype: pl.DataType) -> str | None:
    """None when ``value`` can be compared with a column of ``dtype``, else what it should be."""
    if dtype.is_numeric():
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return None if ok else "a number"
    if dtype == pl.Boolean:
        return None if isinstance(value, bool) else "true or false"
    if isinstance(dtype, pl.Enum):
        categories = dtype.categories.to_list()
        if isinstance(value, str) and value in categories:
            return None
        return f"one of {', '.join(repr(c) for c in categories)}"
    if dtype == pl.String or isinstance(dtype, pl.Categorical):
        return None if isinstance(value, str) else "a string"
    if dtype == pl.Date:
        ok = isinstance(value, date) and not isinstance(value, datetime)
        return None if ok else "a date (e.g. 2024-06-30, unquoted)"
    if isinstance(dtype, pl.Datetime):
        return None if isinstance(value, date) else "a date or datetime (unquoted)"
    return "nothing: only is_null works on this column"


def _condition_expr(cond: Condition, dtype: pl.DataType, rules: RuleSet, fail: Any) -> pl.Expr:
    value = cond.value
    shown = repr(value)
    if isinstance(value, str) and value.startswith("$"):
        value = rules.thresholds[value[1:]]
        shown = f"{cond.value} = {value!r}"
    col = pl.col(cond.column)
    if cond.op == "is_null":
        return col.is_null() if value else col.is_not_null()
    items = value if cond.op in ("in", "not_in") else [value]
    for item in items:
        wanted = _value_fits(item, dtype)
        if wanted is not None:
            raise fail(
                f"column {cond.column!r} is {dtype}, so {cond.op} {shown} does not fit; the "
                f"value must be {wanted}"
            )
    if dtype == pl.Boolean and cond.op in ("lt", "le", "gt", "ge"):
        raise fail(f"column {cond.column!r} is Boolean; use eq, ne, in or is_null, not {cond.op}")
    if cond.op in ("in", "not_in"):
        # a one-element list column (implode): Polars deprecates is_in with a plain collection
        # of the column's own type as ambiguous, and prints that on every call
        if dtype.is_numeric():
            member = col.cast(pl.Float64).is_in(pl.Series([float(v) for v in items]).implode())
        else:
            member = col.is_in(pl.Series(items, dtype=dtype).implode())
        return member if cond.op == "in" else ~member
    literal = pl.lit(value, dtype=dtype) if isinstance(dtype, pl.Enum) else pl.lit(value)
    return {
        "eq": col == literal,
        "ne": col != literal,
        "lt": col < literal,
        "le": col <= literal,
        "gt": col > literal,
        "ge": col >= literal,
    }[cond.op]


def _compile(item: Classifier, schema: pl.Schema, rules: RuleSet) -> pl.Expr:
    where = _Where(rules.source, None)
    optional = {c for rule in item.rules for c in rule.if_columns}
    for name in item.inputs:
        if name not in schema and name not in optional:
            first = next(
                (r for r in item.rules if any(c.column == name for conj in r.any_of for c in conj)),
                None,
            )
            raise where.error(
                f"unknown column {name!r}: the table has no such column (columns: "
                f"{', '.join(schema.names()[:30])})",
                column=item.column,
                rule=first,
                line=None if first is not None else item.line,
            )
    chain: Any = None
    for rule in item.rules:
        if any(c not in schema for c in rule.if_columns):
            continue

        def fail(message: str, _rule: Rule = rule) -> WinbackConfigError:
            return where.error(message, column=item.column, rule=_rule)

        alternatives = []
        for conjunction in rule.any_of:
            expr: pl.Expr = pl.lit(True)
            for cond in conjunction:
                if cond.column not in schema:
                    raise fail(f"unknown column {cond.column!r}: the table has no such column")
                expr = expr & _condition_expr(cond, schema[cond.column], rules, fail)
            alternatives.append(expr)
        matched = pl.any_horizontal(alternatives) if len(alternatives) > 1 else alternatives[0]
        matched = matched.fill_null(False)
        label = pl.lit(rule.label)
        chain = pl.when(matched).then(label) if chain is None else chain.when(matched).then(label)
    dtype = pl.Enum(list(item.labels))
    fallback = pl.lit(item.default, dtype=pl.String)
    if chain is None:
        return fallback.cast(dtype)
    labelled: pl.Expr = chain.otherwise(fallback).cast(dtype)
    return labelled


def classify(
    scored: Any,
    rules: str | Path | RuleSet,
    *,
    thresholds: Mapping[str, Any] | None = None,
) -> pl.DataFrame:
    """Add the rule-based classes of a rules file to a scored table (docs/methods.md#rules).

    Parameters
    ----------
    scored
        Any table (a Polars DataFrame, or anything :func:`winback.silence` reads as a table).
    rules
        A preset name (:func:`presets`: ``"salon"``, ``"auto_dealer"``, …), a ``.toml`` path or a
        :class:`RuleSet`.
    thresholds
        Values replacing the file's ``[thresholds]``, e.g. ``{"active_days": 45}``.

    Returns
    -------
    polars.DataFrame
        ``scored`` with one Enum column per classifier. A column the table already has is an error
        unless its classifier says ``replace = true`` (key columns, :data:`KEY_COLUMNS`, never).

    Raises
    ------
    WinbackConfigError
        A bad rules file or threshold, a classifier writing a column the table already has (without
        ``replace = true``), a column a rule reads that the table lacks.
    WinbackInputError
        A table with a ``customer_id`` column holding a customer twice.

    Examples
    --------
    >>> import polars as pl, winback
    >>> scored = pl.DataFrame({"customer_id": [1, 2, 3], "recency_days": [12.0, 75.0, 200.0],
    ...     "occasions_365d": [30, 8, 1]})
    >>> out = winback.classify(scored, "salon")
    >>> out.select("visit_recency", "visit_rate").rows()
    [('active', 'loyal'), ('two_months_absent', 'dormant'), ('over_three_months', 'lost')]
    """
    rule_set = load_rules(rules, thresholds=thresholds)
    if isinstance(scored, pl.LazyFrame):
        frame = scored.collect()
    elif isinstance(scored, pl.DataFrame):
        frame = scored
    else:
        converted = _io.to_polars(scored)
        frame = converted.collect() if isinstance(converted, pl.LazyFrame) else converted
    if "customer_id" in frame.columns:
        check_unique_customers(frame, "classify")
    return rule_set.apply(frame)
