"""One self-contained HTML page: the Vega, Vega-Lite and Vega-Embed JavaScript inlined (from
``vl-convert-python``, which ships them), the charts' Vega-Lite specs as JSON, plain tables."""

from __future__ import annotations

import functools
import html
import importlib.metadata
import json
import os
import tempfile
from datetime import date, datetime
from pathlib import Path
from typing import Any

import polars as pl

from winback.report._registry import Section, SectionBody, TableBlock

__all__ = ["render_page", "vega_bundle"]


def _cache_dir() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(root) / "winback"


@functools.cache
def vega_bundle() -> str:
    """The Vega + Vega-Lite + Vega-Embed JavaScript, one script with no external imports.

    vl-convert bundles it from the copies it ships (a few seconds); the result is cached in
    ``$XDG_CACHE_HOME/winback`` (``~/.cache/winback``) per vl-convert and Vega-Lite version.
    """
    import vl_convert

    from winback.report._vegalite import VEGALITE_VERSION

    wanted = ".".join(VEGALITE_VERSION.split(".")[:2])
    vl_version = wanted if wanted in vl_convert.get_vegalite_versions() else None
    release = importlib.metadata.version("vl-convert-python")
    path = _cache_dir() / f"vega-bundle-{release}-vl{vl_version or 'latest'}.js"
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        pass
    bundle = vl_convert.javascript_bundle(
        "window.vegaEmbed = vegaEmbed; window.vega = vega; window.vegaLite = vegaLite;",
        vl_version=f"v{vl_version}" if vl_version else None,
    )
    bundle = bundle.replace("</script", "<\\/script")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(
            "w", encoding="utf-8", dir=path.parent, delete=False, suffix=".tmp"
        ) as handle:
            handle.write(bundle)
        os.replace(handle.name, path)
    except OSError:  # a read-only home: no cache, same result
        pass
    return bundle


STYLE = """
:root { --ink: #1f2933; --muted: #616e7c; --line: #d9e2ec; --accent: #c0392b; }
* { box-sizing: border-box; }
body { font: 15px/1.5 "DejaVu Sans", system-ui, sans-serif; color: var(--ink); margin: 0;
       background: #f5f7fa; }
header { background: #1f2933; color: white; padding: 24px 40px; }
header h1 { margin: 0 0 4px; font-size: 26px; }
header p { margin: 0; color: #cbd2d9; }
nav { padding: 10px 40px; background: white; border-bottom: 1px solid var(--line);
      position: sticky; top: 0; z-index: 1; }
nav a { margin-right: 16px; color: var(--accent); text-decoration: none; font-size: 14px; }
main { padding: 8px 40px 40px; max-width: 1200px; }
section { background: white; border: 1px solid var(--line); border-radius: 6px;
          padding: 16px 24px; margin: 20px 0; }
section h2 { margin: 0 0 8px; font-size: 20px; }
.charts { display: flex; flex-wrap: wrap; gap: 24px; align-items: flex-start; }
figure { margin: 8px 0; }
figcaption { color: var(--muted); font-size: 13px; }
.wb-chart { min-height: 40px; }
.wb-chart-error { color: var(--accent); font-weight: bold; }
.wb-table-wrap { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; margin: 8px 0 16px; font-size: 13px; }
caption { text-align: left; color: var(--muted); padding-bottom: 4px; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 10px; text-align: right;
         white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
thead th { background: #f0f4f8; }
.note { color: var(--muted); font-style: italic; }
ul.skipped li { color: var(--muted); }
footer { color: var(--muted); font-size: 12px; padding: 0 40px 24px; }
"""

# Renders every chart; records the outcome on window.winbackReport and <body data-charts>, and
# shows a failed chart's error in its place (console.error too).
RENDER_JS = """
(function () {
  var specs = JSON.parse(document.getElementById("wb-specs").textContent);
  var ids = Object.keys(specs);
  var status = window.winbackReport = {charts: ids.length, rendered: 0, failed: 0, done: false};
  var jobs = ids.map(function (id) {
    var el = document.getElementById(id);
    return vegaEmbed(el, specs[id], {renderer: "svg", actions: false}).then(function () {
      status.rendered += 1;
      el.setAttribute("data-rendered", "true");
    }).catch(function (err) {
      status.failed += 1;
      el.className += " wb-chart-error";
      el.textContent = "This chart could not be drawn: " + err;
      console.error("winback report: chart " + id + " failed: " + err);
    });
  });
  Promise.all(jobs).then(function () {
    status.done = true;
    document.body.setAttribute("data-charts", status.rendered + "/" + status.charts);
  });
})();
"""


def _cell(value: Any, identifier: bool = False) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value) if identifier else f"{value:,}"
    if isinstance(value, float):
        if value != value:  # nan
            return "—"
        text = f"{value:,.4f}".rstrip("0").rstrip(".")
        return text if text not in ("", "-0") else "0"
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def _table(block: TableBlock) -> str:
    frame: pl.DataFrame = block.frame
    shown = [c for c in frame.columns if c != block.key_col]
    ids = {c for c in shown if c == "id" or c.endswith("_id")}  # no thousands separators
    head = "".join(f"<th>{html.escape(c)}</th>" for c in shown)
    rows = []
    for row in frame.iter_rows(named=True):
        key = ""
        if block.key_col is not None:
            key = f' data-key="{html.escape(str(row[block.key_col]), quote=True)}"'
        cells = "".join(f"<td>{html.escape(_cell(row[c], c in ids))}</td>" for c in shown)
        rows.append(f"<tr{key}>{cells}</tr>")
    caption = f"<caption>{html.escape(block.caption)}</caption>" if block.caption else ""
    return (
        f'<div class="wb-table-wrap"><table class="wb-table">{caption}<thead><tr>{head}</tr>'
        f"</thead><tbody>{''.join(rows)}</tbody></table></div>"
    )


def _spec(chart: Any) -> dict[str, Any]:
    # Not validated against the Vega-Lite schema here: that costs ~1 s on a report and changes
    # nothing in the spec; the tests validate every chart (tests/report).
    spec = chart if isinstance(chart, dict) else chart.to_dict(validate=False)
    return dict(spec)


def render_page(
    *,
    title: str,
    subtitle: str,
    sections: list[tuple[Section, SectionBody]],
    skipped: dict[str, str],
    titles: dict[str, str],
    footer: str,
) -> str:
    """The report as one HTML string."""
    specs: dict[str, dict[str, Any]] = {}
    parts: list[str] = []
    for section, body in sections:
        inner: list[str] = []
        if body.text:
            inner.append(f"<p>{html.escape(body.text)}</p>")
        figures: list[str] = []
        for chart, caption in body.charts:
            chart_id = f"chart-{section.key}-{len(figures) + 1}"
            specs[chart_id] = _spec(chart)
            figures.append(
                f'<figure><div class="wb-chart" id="{chart_id}"></div>'
                f"<figcaption>{html.escape(caption)}</figcaption></figure>"
            )
        if figures:
            inner.append(f'<div class="charts">{"".join(figures)}</div>')
        inner.extend(_table(block) for block in body.tables)
        inner.extend(f'<p class="note">{html.escape(note)}</p>' for note in body.notes)
        parts.append(
            f'<section id="sec-{section.key}" data-section="{section.key}">'
            f"<h2>{html.escape(section.title)}</h2>{''.join(inner)}</section>"
        )
    if skipped:
        items = "".join(
            f"<li><b>{html.escape(titles.get(key, key))}</b>: {html.escape(reason)}</li>"
            for key, reason in skipped.items()
        )
        parts.append(
            '<section id="sec-skipped" data-section="skipped"><h2>Sections not shown</h2>'
            f'<ul class="skipped">{items}</ul></section>'
        )
    nav = "".join(
        f'<a href="#sec-{section.key}">{html.escape(section.title)}</a>' for section, _ in sections
    )
    specs_json = json.dumps(specs, separators=(",", ":"), allow_nan=False).replace("<", "\\u003c")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="winback">
<title>{html.escape(title)}</title>
<style>{STYLE}</style>
<script>{vega_bundle()}</script>
</head>
<body>
<header><h1>{html.escape(title)}</h1><p>{html.escape(subtitle)}</p></header>
<nav>{nav}</nav>
<main>
{"".join(parts)}
</main>
<footer>{html.escape(footer)}</footer>
<script type="application/json" id="wb-specs">{specs_json}</script>
<script>{RENDER_JS}</script>
</body>
</html>
"""
