"""Contact messages (docs/loop.md#contact-messages): templates per strategy and channel,
checked before a run writes anything, rendered per due contact in Jinja2's sandbox into the
day's outbox.

A template is a file ``STRATEGY.CHANNEL.j2`` (``coupon.sms.j2``) in the templates folder;
``default.CHANNEL.j2`` serves a strategy without its own. Each due contact gets one message per
channel its strategy (or the default) has. The templates see:

- ``customer``: ``id``, ``segment``, ``strategy``, ``recency_days``, ``silence_score``,
  ``value``, ``value_tier``, ``last_purchase`` (a date), ``recommended_products`` (a list of
  product ids with ``[recommend] enabled``, else None; docs/methods.md#recommendations), and
  every column of the optional customers file (``name``, ``email`` …);
- ``silence``: the time since the last purchase in words, in the config's language
  (``silence_en`` and ``silence_zh`` both);
- ``offer``: the strategy's offer (``[messages] offers``), ``staff``, ``channel``,
  ``campaign_id``, ``day``;
- three filters that write dates and numbers as the message's language does, with Babel's
  CLDR data (:data:`LOCALES`): ``{{ customer.last_purchase | date }}`` ("January 23, 2024" /
  "2024年1月23日"; ``date("medium")``, ``"short"``, ``"full"`` or a CLDR pattern),
  ``{{ customer.value | number }}`` ("1,234.5"; ``number(2)``: two decimals) and
  ``{{ customer.value | money("CNY") }}`` ("CN¥1,234.50" / "¥1,234.50").

The engine is Jinja2's :class:`~jinja2.sandbox.SandboxedEnvironment` with ``StrictUndefined``:
a template cannot reach Python objects' internals or the file system (templates are read by
winback and given to the engine as text; ``include`` reaches only the other templates), and a
name it does not know is an error, never an empty string. Syntax errors and unknown names are
:class:`~winback.errors.WinbackConfigError` naming the template and line, raised before
anything is written.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from winback.errors import WinbackConfigError
from winback.loop.silence_words import silence_in_words

__all__ = [
    "BUNDLED",
    "CONTEXT_NAMES",
    "CUSTOMER_FIELDS",
    "LOCALES",
    "OUTBOX_COLUMNS",
    "Templates",
    "load_templates",
    "render_outbox",
]

#: The bundled example template sets (``[messages] templates = "en"`` or ``"zh"``).
BUNDLED = ("en", "zh")
#: Names every template sees.
CONTEXT_NAMES = frozenset(
    {"customer", "silence", "silence_en", "silence_zh", "offer", "staff", "channel"}
    | {"campaign_id", "day"}
)
#: Fields of ``customer`` from the state (the customers file adds its columns).
CUSTOMER_FIELDS = (
    "id",
    "segment",
    "strategy",
    "recency_days",
    "silence_score",
    "value",
    "value_tier",
    "last_purchase",
    "recommended_products",
)
#: Columns of ``outbox-D.csv``.
OUTBOX_COLUMNS = (
    "campaign_id",
    "customer_id",
    "staff",
    "strategy",
    "channel",
    "template",
    "language",
    "message",
)
_SUFFIX = ".j2"
#: The Babel (CLDR) locale of each message language: dates and numbers in the templates.
LOCALES = {"en": "en", "zh": "zh_Hans_CN"}
#: The filters the templates get (:func:`_filters`).
FILTERS = ("date", "number", "money")


def _filters(language: str) -> dict[str, Any]:
    """The ``date``, ``number`` and ``money`` filters in the language's locale (Babel). A
    value of the wrong kind is a template error (named with its line by the caller); None
    (a missing value) gives an empty text."""
    import jinja2

    locale = LOCALES.get(language, "en")

    def babel() -> Any:
        try:
            import babel.dates
            import babel.numbers
        except ImportError:
            raise jinja2.TemplateRuntimeError(
                "the date, number and money filters need Babel: pip install 'winback[loop]'"
            ) from None
        return babel

    def date_(value: Any, format: str = "long") -> str:
        if value is None:
            return ""
        if not isinstance(value, date):
            raise jinja2.TemplateRuntimeError(f"date: {value!r} is not a date")
        try:
            return str(babel().dates.format_date(value, format=format, locale=locale))
        except (ValueError, KeyError) as exc:
            raise jinja2.TemplateRuntimeError(f"date: bad format {format!r} ({exc})") from None

    def number(value: Any, decimals: int | None = None) -> str:
        if value is None:
            return ""
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise jinja2.TemplateRuntimeError(f"number: {value!r} is not a number")
        pattern = None if decimals is None else "#,##0" + ("." + "0" * decimals if decimals else "")
        return str(babel().numbers.format_decimal(value, format=pattern, locale=locale))

    def money(value: Any, currency: str) -> str:
        if value is None:
            return ""
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise jinja2.TemplateRuntimeError(f"money: {value!r} is not a number")
        numbers = babel().numbers
        if not isinstance(currency, str) or not numbers.is_currency(currency):
            raise jinja2.TemplateRuntimeError(
                f"money: {currency!r} is not an ISO 4217 currency code (CNY, USD, EUR …)"
            )
        return str(numbers.format_currency(value, currency, locale=locale))

    return {"date": date_, "number": number, "money": money}


def _folder(templates: str) -> Path:
    if templates in BUNDLED:
        return Path(__file__).parent / "templates" / templates
    return Path(templates)


@dataclass(frozen=True)
class Templates:
    """Checked templates: ``sources`` (file name → text) and, per strategy (``default`` for the
    rest), its channels' template names."""

    folder: str
    sources: Mapping[str, str]
    by_strategy: Mapping[str, Mapping[str, str]]

    def environment(self, language: str = "en") -> Any:
        """The sandboxed Jinja2 environment over these templates (StrictUndefined, no
        autoescape: the messages are text, not HTML), with the ``date``, ``number`` and
        ``money`` filters in ``language``'s locale."""
        import jinja2
        import jinja2.sandbox

        env = jinja2.sandbox.SandboxedEnvironment(
            loader=jinja2.DictLoader(dict(self.sources)),
            undefined=jinja2.StrictUndefined,
            autoescape=False,
            keep_trailing_newline=False,
        )
        env.filters.update(_filters(language))
        return env

    def channels(self, strategy: str | None) -> Mapping[str, str]:
        """The channel → template name of a strategy (its own, else ``default``'s)."""
        return self.by_strategy.get(strategy or "", self.by_strategy.get("default", {}))


def require_jinja2() -> None:
    """Contact messages need Jinja2 (``pip install 'winback[loop]'``)."""
    import importlib.util

    if importlib.util.find_spec("jinja2") is None:
        raise WinbackConfigError(
            "contact messages are rendered with Jinja2, which is not installed: "
            "pip install 'winback[loop]'"
        )


def load_templates(templates: str, *, key: str = "messages.templates") -> Templates:
    """Reads and checks the templates of a folder (or a bundled set): every file parses, and
    uses only the names the context gives (:data:`CONTEXT_NAMES`, ``customer`` fields checked
    at render); errors name the template and line."""
    require_jinja2()
    import jinja2

    folder = _folder(templates)
    if not folder.is_dir():
        raise WinbackConfigError(
            f"config key {key}: {templates!r} is not a folder of templates (or one of the "
            f"bundled sets: {', '.join(BUNDLED)})"
        )
    sources: dict[str, str] = {}
    by_strategy: dict[str, dict[str, str]] = {}
    for path in sorted(folder.glob(f"*{_SUFFIX}")):
        parts = path.name[: -len(_SUFFIX)].split(".")
        if len(parts) != 2 or not all(parts):
            raise WinbackConfigError(
                f"template {path.name!r}: name templates STRATEGY.CHANNEL{_SUFFIX} "
                f"(coupon.sms{_SUFFIX}, default.letter{_SUFFIX})"
            )
        try:
            sources[path.name] = path.read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise WinbackConfigError(
                f"template {path.name!r} cannot be read as UTF-8 text ({exc})"
            ) from None
        by_strategy.setdefault(parts[0], {})[parts[1]] = path.name
    if not sources:
        raise WinbackConfigError(
            f"config key {key}: {str(folder)!r} holds no STRATEGY.CHANNEL{_SUFFIX} templates"
        )
    result = Templates(str(folder), sources, by_strategy)
    env = result.environment()
    from jinja2 import meta, nodes

    for name, text in sources.items():
        try:
            tree = env.parse(text, name=name)
        except jinja2.TemplateSyntaxError as exc:
            raise WinbackConfigError(
                f"template {name!r}, line {exc.lineno}: {exc.message}"
            ) from None
        try:
            env.compile(tree, name=name, filename=name)  # an unknown filter or test
        except jinja2.TemplateSyntaxError as exc:
            raise WinbackConfigError(
                f"template {name!r}, line {exc.lineno}: {exc.message}"
            ) from None
        unknown = meta.find_undeclared_variables(tree) - CONTEXT_NAMES
        if unknown:
            first = min(
                (node for node in tree.find_all(nodes.Name) if node.name in unknown),
                key=lambda node: node.lineno,
            )
            raise WinbackConfigError(
                f"template {name!r}, line {first.lineno}: unknown field {first.name!r} "
                f"(fields: {', '.join(sorted(CONTEXT_NAMES))})"
            )
        for ref in meta.find_referenced_templates(tree):
            if ref is not None and ref not in sources:
                raise WinbackConfigError(
                    f"template {name!r} includes {ref!r}, which is not in {str(folder)!r}"
                )
    return result


def check_customer_fields(templates: Templates, fields: Iterable[str]) -> None:
    """Every ``customer.X`` the templates use is a field the messages will have."""
    from jinja2 import nodes

    known = set(fields)
    env = templates.environment()
    for name, text in templates.sources.items():
        tree = env.parse(text, name=name)
        for node in tree.find_all(nodes.Getattr):
            target = node.node
            if (
                isinstance(target, nodes.Name)
                and target.name == "customer"
                and node.attr not in known
            ):
                raise WinbackConfigError(
                    f"template {name!r}, line {node.lineno}: unknown field "
                    f"customer.{node.attr} (fields: {', '.join(sorted(known))})"
                )


def _line_of(template: str) -> int | None:
    """The template line of the exception being handled (Jinja2 puts template frames into the
    traceback under the template's name)."""
    tb = sys.exc_info()[2]
    line = None
    while tb is not None:
        # a template read from text (DictLoader) has no file: Jinja2 names its frames
        # "<template>"; only the rendered template's frames are in the traceback
        if tb.tb_frame.f_code.co_filename in (template, "<template>"):
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def render_outbox(
    templates: Templates,
    due: pl.DataFrame,
    *,
    day: date,
    language: str,
    offers: Mapping[str, str],
    customers: pl.DataFrame | None = None,
) -> tuple[pl.DataFrame, int]:
    """The outbox of the due contacts: one row per contact and channel (:data:`OUTBOX_COLUMNS`),
    and the number of due contacts whose strategy has no template (nor a ``default`` one).

    ``due`` has ``campaign_id, customer_id, staff, strategy, segment`` and the snapshot's
    ``recency_days, silence_score, value, value_tier``; ``customers`` (text columns, with
    ``customer_id``) adds fields. An error while rendering (a field missing for one customer, a
    filter given a wrong value) is a :class:`~winback.errors.WinbackConfigError` naming the
    template, line and customer.
    """
    import jinja2

    env = templates.environment(language)
    extra: dict[str, dict[str, Any]] = {}
    fields = list(CUSTOMER_FIELDS)
    if customers is not None:
        fields += [c for c in customers.columns if c != "customer_id"]
        extra = {str(row.pop("customer_id")): row for row in customers.iter_rows(named=True)}
    check_customer_fields(templates, fields)
    rows: list[dict[str, Any]] = []
    missing = 0
    for target in due.iter_rows(named=True):
        channels = templates.channels(target["strategy"])
        if not channels:
            missing += 1
            continue
        recency = target.get("recency_days")
        last = day - timedelta(days=int(recency)) if recency is not None else None
        customer = {
            "id": target["customer_id"],
            "segment": target["segment"],
            "strategy": target["strategy"],
            "recency_days": recency,
            "silence_score": target.get("silence_score"),
            "value": target.get("value"),
            "value_tier": target.get("value_tier"),
            "last_purchase": last,
            # a list of product ids with [recommend] enabled, else None
            "recommended_products": target.get("recommended_products"),
            **{f: None for f in fields[len(CUSTOMER_FIELDS) :]},
            **extra.get(str(target["customer_id"]), {}),
        }
        words = {
            lang: silence_in_words(last, day, lang) if last is not None else ""
            for lang in ("en", "zh")
        }
        offer = offers.get(target["strategy"] or "", offers.get("*", ""))
        for channel, name in sorted(channels.items()):
            context = {
                "customer": customer,
                "silence": words.get(language, words["en"]),
                "silence_en": words["en"],
                "silence_zh": words["zh"],
                "offer": offer,
                "staff": target["staff"],
                "channel": channel,
                "campaign_id": target["campaign_id"],
                "day": day,
            }
            try:
                message = env.get_template(name).render(context)
            except jinja2.TemplateError as exc:
                line = _line_of(name)
                where = f", line {line}" if line else ""
                raise WinbackConfigError(
                    f"template {name!r}{where}: {exc} (customer {target['customer_id']})"
                ) from None
            rows.append(
                {
                    "campaign_id": target["campaign_id"],
                    "customer_id": target["customer_id"],
                    "staff": target["staff"],
                    "strategy": target["strategy"],
                    "channel": channel,
                    "template": name,
                    "language": language,
                    "message": message,
                }
            )
    frame = pl.DataFrame(rows, schema=dict.fromkeys(OUTBOX_COLUMNS, pl.String))
    return frame, missing
