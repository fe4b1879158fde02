"""The report's Vega-Lite specs as plain dicts, without importing Altair.

The sections build their charts with the few Altair calls this module mirrors (``Chart``,
``mark_*``, ``encode``, ``properties``, ``+`` for a layer, ``facet``; the channels ``X``, ``Y``,
``X2``, ``XOffset``, ``Color``, ``StrokeDash``, ``Text``, ``Tooltip``, ``Column``,
``ColorValue``; ``Scale``, ``condition``, ``value``), and ``to_dict`` gives the dict Altair's
``to_dict(validate=False)`` gives for the same calls, key for key and in the same key order, so the
page is byte for byte what it was with Altair. Importing Altair (with jsonschema, narwhals and its
schema classes) cost ≈ 0.3 s of CPU on every ``winback report``, and its ``to_dict`` ≈ 0.1 s more.

What Altair does and this mirrors: a ``"field:T"`` shorthand becomes ``field`` and ``type``; the
options of a channel or of ``Scale(...)`` come out in alphabetical order (Altair's generated
signatures), those given to ``.scale(...)`` or ``.axis(...)`` in the order given; a mark is
``{"type": ..., options in alphabetical order}``; a data frame's rows move to the top-level
``datasets`` under ``"data-" + sha256(JSON with sorted keys)[:32]``, dates and datetimes written
as ISO strings, at most 5,000 rows (Altair's ``MaxRowsError``); layers that share one frame (the
same object) share the data at the top; the default theme's ``config`` comes first, ``$schema``
and ``datasets`` last. Anything else (aggregate shorthands, other properties, untyped fields)
raises ``TypeError`` rather than guess. ``tests/report/test_vegalite_specs.py`` checks every
chart of the report, and each construct, against Altair's own ``to_dict``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import polars as pl

__all__ = [
    "SCHEMA_URL",
    "VEGALITE_VERSION",
    "X2",
    "Chart",
    "Color",
    "ColorValue",
    "Column",
    "Scale",
    "StrokeDash",
    "Text",
    "Tooltip",
    "X",
    "XOffset",
    "Y",
    "condition",
    "value",
]

#: The Vega-Lite version of the pinned Altair (``altair.VEGALITE_VERSION``; a test checks).
VEGALITE_VERSION = "6.4.1"
SCHEMA_URL = f"https://vega.github.io/schema/vega-lite/v{VEGALITE_VERSION}.json"
#: Altair's default data transformer refuses larger frames (``MaxRowsError``).
MAX_ROWS = 5000
_THEME_CONFIG = {"view": {"continuousWidth": 300, "continuousHeight": 300}}
_TYPES = {
    "Q": "quantitative",
    "N": "nominal",
    "O": "ordinal",
    "T": "temporal",
    "G": "geojson",
}
_ISO = "%Y-%m-%dT%H:%M:%S"


def _plain(obj: Any) -> Any:
    """A spec value as JSON-ready Python (what Altair's ``_todict`` makes of it)."""
    if isinstance(obj, _Schema):
        return obj.to_dict()
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if obj is None or isinstance(obj, str | bool | int | float):
        return obj
    # NumPy scalars and arrays, dates, series: Altair converts them its own ways; none of the
    # report's charts passes one, so refuse rather than guess.
    raise TypeError(f"winback.report: a chart option of type {type(obj).__name__} is not supported")


class _Schema:
    """A Vega-Lite object: its options, written in alphabetical order."""

    def __init__(self, **options: Any) -> None:
        self._options = dict(options)

    def to_dict(self) -> dict[str, Any]:
        return {key: _plain(self._options[key]) for key in sorted(self._options)}


class Scale(_Schema):
    """``alt.Scale``."""


class _Channel(_Schema):
    """A field channel: ``"field:T"`` shorthand (T one of Q, N, O, T, G) and options."""

    _typed = True

    def __init__(self, shorthand: str, **options: Any) -> None:
        field, type_ = _parse(shorthand, self._typed)
        parsed: dict[str, Any] = {"field": field}
        if type_ is not None:
            parsed["type"] = type_
        super().__init__(**{**parsed, **options})

    def _set(self, key: str, args: tuple[Any, ...], options: dict[str, Any]) -> Any:
        if len(args) > 1 or (args and options):
            raise TypeError(f"winback.report: {key}() takes one value or options")
        copy = type(self).__new__(type(self))
        # Altair's setter methods keep the options in the order given (its classes sort them).
        copy._options = {**self._options, key: args[0] if args else dict(options)}
        return copy

    def scale(self, *args: Any, **options: Any) -> Any:
        return self._set("scale", args, options)

    def axis(self, *args: Any, **options: Any) -> Any:
        return self._set("axis", args, options)

    def bin(self, *args: Any, **options: Any) -> Any:
        return self._set("bin", args, options)


def _parse(shorthand: str, typed: bool) -> tuple[str, str | None]:
    if not isinstance(shorthand, str) or "(" in shorthand:
        raise TypeError(f"winback.report: unsupported channel shorthand {shorthand!r}")
    field, colon, code = shorthand.rpartition(":")
    if not colon:
        if typed:
            raise TypeError(f"winback.report: give the type of {shorthand!r} (e.g. 'x:Q')")
        return shorthand, None
    type_ = _TYPES.get(code, code if code in _TYPES.values() else None)
    if type_ is None:
        raise TypeError(f"winback.report: unknown type in channel shorthand {shorthand!r}")
    return field, type_ if typed else None


class X(_Channel):
    """``alt.X``."""


class Y(_Channel):
    """``alt.Y``."""


class XOffset(_Channel):
    """``alt.XOffset``."""


class Color(_Channel):
    """``alt.Color``."""


class StrokeDash(_Channel):
    """``alt.StrokeDash``."""


class Text(_Channel):
    """``alt.Text``."""


class Tooltip(_Channel):
    """``alt.Tooltip``."""


class Column(_Channel):
    """``alt.Column``."""


class X2(_Channel):
    """``alt.X2``: a field without a type."""

    _typed = False


class ColorValue(_Schema):
    """``alt.ColorValue``: a value, e.g. ``**condition(...)``."""


def value(v: Any) -> dict[str, Any]:
    """``alt.value``."""
    return {"value": v}


def condition(test: str, if_true: Mapping[str, Any], if_false: Mapping[str, Any]) -> dict[str, Any]:
    """``alt.condition`` with a predicate string and two ``value(...)``s."""
    if not isinstance(test, str):
        raise TypeError("winback.report: condition() takes a predicate string")
    return {"condition": {"test": test, **if_true}, **if_false}


#: The channel class a bare ``"field:T"`` string in ``encode(name=...)`` stands for.
_CHANNELS: dict[str, type[_Channel]] = {
    "x": X,
    "y": Y,
    "x2": X2,
    "xOffset": XOffset,
    "color": Color,
    "strokeDash": StrokeDash,
    "text": Text,
    "tooltip": Tooltip,
}


def _channel(name: str, spec: Any) -> Any:
    if isinstance(spec, list):
        return [_channel(name, s) for s in spec]
    if isinstance(spec, str) and name in _CHANNELS:
        return _CHANNELS[name](spec)
    if isinstance(spec, _Schema):
        return spec
    raise TypeError(f"winback.report: unsupported encoding {name}={spec!r}")


def _rows(frame: Any) -> list[dict[str, Any]]:
    """A frame's rows as Altair writes them inline (dates as ISO strings)."""
    if not isinstance(frame, pl.DataFrame):
        raise TypeError(f"winback.report: chart data must be a Polars DataFrame, got {type(frame)}")
    if frame.height > MAX_ROWS:
        raise ValueError(
            f"winback.report: a chart's data has {frame.height:,} rows, more than {MAX_ROWS:,}"
        )
    columns: list[Any] = []
    for name, dtype in frame.schema.items():
        if dtype == pl.Date:
            columns.append(pl.col(name).cast(pl.Datetime).dt.to_string(_ISO))
        elif isinstance(dtype, pl.Datetime):
            fmt = f"{_ISO}%.f" + ("%z" if dtype.time_zone is not None else "")
            columns.append(pl.col(name).dt.to_string(fmt))
        elif isinstance(dtype, pl.Duration):
            raise ValueError(f'winback.report: chart field "{name}" is a duration')
        else:
            columns.append(name)
    return frame.select(columns).rows(named=True)


def _named(frame: Any, datasets: dict[str, Any]) -> dict[str, str]:
    values = _rows(frame)
    if values == [{}]:
        name = "empty"
    else:
        text = json.dumps(values, sort_keys=True, default=str)
        name = "data-" + hashlib.sha256(text.encode()).hexdigest()[:32]
    datasets[name] = values
    return {"name": name}


class _TopLevel:
    def to_dict(self, validate: bool = False) -> dict[str, Any]:
        """The spec, as Altair's ``to_dict(validate=False)``: theme config, the chart,
        ``$schema``, the inline datasets."""
        datasets: dict[str, Any] = {}
        spec: dict[str, Any] = {"config": json.loads(json.dumps(_THEME_CONFIG))}
        spec.update(self._spec(datasets))
        spec["$schema"] = SCHEMA_URL
        if datasets:
            spec["datasets"] = datasets
        return spec

    def _spec(self, datasets: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError


def _size(properties: dict[str, Any]) -> dict[str, Any]:
    unknown = set(properties) - {"width", "height"}
    if unknown:
        raise TypeError(f"winback.report: unsupported chart properties {sorted(unknown)}")
    return {key: properties[key] for key in ("height", "width") if key in properties}


class Chart(_TopLevel):
    """``alt.Chart`` over a Polars frame."""

    def __init__(self, data: Any = None) -> None:
        self.data = data
        self._mark: dict[str, Any] | None = None
        self._encoding: dict[str, Any] = {}
        self._properties: dict[str, Any] = {}

    def _copy(self) -> Chart:
        copy = Chart(self.data)
        copy._mark, copy._encoding = self._mark, dict(self._encoding)
        copy._properties = dict(self._properties)
        return copy

    def _marked(self, type_: str, options: dict[str, Any]) -> Chart:
        copy = self._copy()
        copy._mark = {"type": type_, **{key: options[key] for key in sorted(options)}}
        return copy

    def mark_bar(self, **options: Any) -> Chart:
        return self._marked("bar", options)

    def mark_line(self, **options: Any) -> Chart:
        return self._marked("line", options)

    def mark_rect(self, **options: Any) -> Chart:
        return self._marked("rect", options)

    def mark_text(self, **options: Any) -> Chart:
        return self._marked("text", options)

    def mark_circle(self, **options: Any) -> Chart:
        return self._marked("circle", options)

    def encode(self, **channels: Any) -> Chart:
        copy = self._copy()
        copy._encoding.update({name: _channel(name, s) for name, s in channels.items()})
        return copy

    def properties(self, **properties: Any) -> Chart:
        copy = self._copy()
        copy._properties.update(properties)
        return copy

    def __add__(self, other: Any) -> LayerChart:
        if not isinstance(other, Chart):
            return NotImplemented
        return LayerChart([self, other])

    def facet(self, *, column: Column) -> FacetChart:
        if self.data is None:
            raise ValueError("winback.report: a faceted chart needs data")
        spec = self._copy()
        spec.data = None
        return FacetChart(self.data, column, spec)

    def _unit(self, datasets: dict[str, Any], data: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if data and self.data is not None:
            out["data"] = _named(self.data, datasets)
        if self._mark is not None:
            out["mark"] = _plain(self._mark)
        if self._encoding:
            out["encoding"] = {key: _plain(self._encoding[key]) for key in sorted(self._encoding)}
        out.update(_size(self._properties))
        return out

    def _spec(self, datasets: dict[str, Any]) -> dict[str, Any]:
        return self._unit(datasets)


class LayerChart(_TopLevel):
    """``chart + chart``: the layers share the data at the top when it is one frame object."""

    def __init__(self, layers: list[Chart]) -> None:
        self.layers = layers
        self._properties: dict[str, Any] = {}

    def properties(self, **properties: Any) -> LayerChart:
        copy = LayerChart(self.layers)
        copy._properties = {**self._properties, **properties}
        return copy

    def _spec(self, datasets: dict[str, Any]) -> dict[str, Any]:
        first = self.layers[0].data
        shared = first is not None and all(layer.data is first for layer in self.layers)
        top: dict[str, Any] | None = _named(first, datasets) if shared else None
        layers = [layer._unit(datasets, not shared) for layer in self.layers]
        out: dict[str, Any] = {"layer": layers}
        if top is not None:
            out["data"] = top
        out.update(_size(self._properties))
        return out


class FacetChart(_TopLevel):
    """``chart.facet(column=...)``: the data at the top, the chart as the spec."""

    def __init__(self, data: Any, column: Column, spec: Chart) -> None:
        self.data, self.column, self.spec = data, column, spec

    def _spec(self, datasets: dict[str, Any]) -> dict[str, Any]:
        return {
            "data": _named(self.data, datasets),
            "facet": {"column": _plain(self.column)},
            "spec": self.spec._unit(datasets),
        }
