"""Renders a page in real headless Chromium over the DevTools protocol (for the report tests).

``render(path)`` opens the file, waits until the report says its charts are done, and returns the
console errors and uncaught exceptions, every network request, the size and mark count of each
chart's SVG/canvas, the summary table's figures, the final DOM and a full-page PNG screenshot.
Chromium is Debian's ``chromium`` package: CI installs it (scripts/ensure_chromium.sh); elsewhere
``make browser`` does, and without it these tests are skipped with that advice.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import websocket

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--hide-scrollbars",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-extensions",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-port=0",
)

# Per chart container: its drawn SVG or canvas, that element's laid-out size, and how many marks
# (the children of its role-mark groups: bars, cells, points, lines, labels) Vega drew.
CHARTS_JS = """
Array.from(document.querySelectorAll('.wb-chart')).map(function (el) {
  var drawn = el.querySelector('svg.marks') || el.querySelector('canvas');
  var box = drawn ? drawn.getBoundingClientRect() : {width: 0, height: 0};
  var marks = drawn ? drawn.querySelectorAll('g.role-mark > *').length : 0;
  return {id: el.id, tag: drawn ? drawn.tagName.toLowerCase() : null, width: box.width,
          height: box.height, marks: marks, rendered: el.getAttribute('data-rendered')};
})
"""

SUMMARY_JS = """
Object.fromEntries(Array.from(document.querySelectorAll('#sec-summary tr[data-key]')).map(
  function (tr) { return [tr.getAttribute('data-key'), tr.cells[tr.cells.length - 1].textContent]; }))
"""


def find_chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    if os.environ.get("CI"):
        raise RuntimeError(
            "Chromium is not installed: CI installs it with scripts/ensure_chromium.sh "
            "(`make browser`)"
        )
    pytest.skip(
        "Chromium is not installed, so the report's browser tests are skipped outside CI; "
        "`make browser` installs Debian's chromium (apt-get, as root or through sudo)"
    )


@dataclass
class Rendered:
    console_errors: list[str] = field(default_factory=list)
    exceptions: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    charts: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, str] = field(default_factory=dict)
    status: dict[str, Any] = field(default_factory=dict)
    dom: str = ""
    screenshot: bytes = b""


class _DevTools:
    """A minimal DevTools-protocol client over one websocket (flattened target sessions)."""

    def __init__(self, url: str, timeout: float) -> None:
        self.ws = websocket.create_connection(url, timeout=timeout, suppress_origin=True)
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        message: dict[str, Any] = {"id": self.next_id, "method": method, "params": params}
        if session is not None:
            message["sessionId"] = session
        self.ws.send(json.dumps(message))
        while True:
            reply = json.loads(self.ws.recv())
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                result: dict[str, Any] = reply.get("result", {})
                return result
            if "method" in reply:
                self.events.append(reply)

    def evaluate(self, session: str, expression: str) -> Any:
        result = self.call(
            "Runtime.evaluate",
            session,
            expression=expression,
            returnByValue=True,
            awaitPromise=True,
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"evaluate failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def close(self) -> None:
        self.ws.close()


def _wait_for_port(profile: Path, process: subprocess.Popen[bytes], timeout: float) -> str:
    active = profile / "DevToolsActivePort"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"chromium exited with code {process.returncode} at start")
        if active.exists():
            lines = active.read_text().splitlines()
            if len(lines) >= 2:
                return f"ws://127.0.0.1:{lines[0]}{lines[1]}"
        time.sleep(0.05)
    raise RuntimeError("chromium did not open its DevTools port in time")


def _event_text(event: dict[str, Any]) -> str:
    params = event["params"]
    if event["method"] == "Runtime.consoleAPICalled":
        return " ".join(
            str(arg.get("value", arg.get("description", ""))) for arg in params.get("args", [])
        )
    if event["method"] == "Runtime.exceptionThrown":
        details = params["exceptionDetails"]
        return str(details.get("exception", {}).get("description") or details.get("text"))
    return str(params.get("entry", {}).get("text", ""))


def render(page: Path, *, width: int = 1280, timeout: float = 60.0) -> Rendered:
    """Opens ``page`` in headless Chromium and reads what it drew (see the module docstring)."""
    with tempfile.TemporaryDirectory(prefix="winback-chromium-") as tmp:
        profile = Path(tmp)
        process = subprocess.Popen(
            [find_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            client = _DevTools(_wait_for_port(profile, process, timeout), timeout)
            try:
                return _render(client, page.resolve(), width, timeout)
            finally:
                with contextlib.suppress(RuntimeError, websocket.WebSocketException, OSError):
                    client.call("Browser.close")
                client.close()
        finally:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _render(client: _DevTools, page: Path, width: int, timeout: float) -> Rendered:
    target = client.call("Target.createTarget", url="about:blank")["targetId"]
    session = client.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
    for domain in ("Runtime", "Log", "Page", "Network"):
        client.call(f"{domain}.enable", session)
    client.call(
        "Emulation.setDeviceMetricsOverride",
        session,
        width=width,
        height=900,
        deviceScaleFactor=1,
        mobile=False,
    )
    client.call("Page.navigate", session, url=page.as_uri())
    deadline = time.monotonic() + timeout
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status = client.evaluate(session, "window.winbackReport || null") or {}
        if status.get("done"):
            break
        time.sleep(0.1)
    result = Rendered(status=status)
    result.charts = client.evaluate(session, CHARTS_JS)
    result.summary = client.evaluate(session, SUMMARY_JS)
    result.dom = client.evaluate(session, "document.documentElement.outerHTML")
    metrics = client.call("Page.getLayoutMetrics", session)["cssContentSize"]
    shot = client.call(
        "Page.captureScreenshot",
        session,
        format="png",
        captureBeyondViewport=True,
        clip={"x": 0, "y": 0, "width": width, "height": metrics["height"], "scale": 1},
    )
    result.screenshot = base64.b64decode(shot["data"])
    for event in client.events:
        method = event["method"]
        if method == "Runtime.consoleAPICalled" and event["params"]["type"] in ("error", "assert"):
            result.console_errors.append(_event_text(event))
        elif method == "Runtime.exceptionThrown":
            result.exceptions.append(_event_text(event))
        elif method == "Log.entryAdded" and event["params"]["entry"]["level"] == "error":
            result.console_errors.append(_event_text(event))
        elif method == "Network.requestWillBeSent":
            result.requests.append(event["params"]["request"]["url"])
    return result
