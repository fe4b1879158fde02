"""What the service tells about itself and how it sheds load (docs/serving.md#http-monitor).

An ASGI middleware around the app that, for every request,

- refuses it at once with 503 and ``Retry-After`` when ``max_concurrency`` requests are already
  being served (the probes and ``/metrics`` are never refused, so an overloaded process still
  reports itself);
- sets its deadline (``timeout_s`` from arrival) for the handlers;
- counts it in the Prometheus metrics (requests by route, method and status; latency histogram
  by route; rejects by reason; requests in flight; customers scored);
- writes one JSON access-log line (logger ``winback.serve.access``).

A pure ASGI middleware (not Starlette's ``BaseHTTPMiddleware``): it adds no task per request
and passes the response through as it is sent.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import UTC, datetime
from typing import Any, Final

from winback.serve.problems import PROBLEM_TYPE, ProblemError

__all__ = [
    "ACCESS_LOGGER",
    "EVENT_LOGGER",
    "MULTIPROC_ENV",
    "Metrics",
    "Observe",
    "json_logger",
    "multiprocess_dir",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: The logger of the access lines (one JSON object per line on stderr).
ACCESS_LOGGER: Final = "winback.serve.access"
#: The logger of the service's events (reloads), JSON lines as well.
EVENT_LOGGER: Final = "winback.serve"
#: Paths never refused for load: liveness, readiness and the metrics themselves.
_ALWAYS: Final = frozenset({"/healthz", "/readyz", "/metrics"})
_METHODS: Final = frozenset({"GET", "POST", "HEAD", "PUT", "DELETE", "PATCH", "OPTIONS"})
#: Latency buckets in seconds, from a one-customer answer (~1 ms) to a timeout.
_BUCKETS: Final = (
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0,
)  # fmt: skip


#: prometheus_client's environment variable: the directory where each worker process of a
#: multi-process server (``winback serve --workers N``) writes its metrics, so that any worker's
#: ``/metrics`` answer adds up all of them (docs/serving.md#http-monitor).
MULTIPROC_ENV: Final = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess_dir() -> str | None:
    """The directory of :data:`MULTIPROC_ENV`, or None (metrics of this process only)."""
    return os.environ.get(MULTIPROC_ENV) or None


class Metrics:
    """The service's Prometheus metrics, in a registry of their own (one per app), with the
    process collector (RSS, CPU, open files).

    With :data:`MULTIPROC_ENV` set (``winback serve --workers N`` sets it to a fresh directory),
    prometheus_client's multiprocess mode: every worker writes its values to files there and
    :meth:`render` adds up all the workers' (counters and histograms summed, requests in flight
    summed over live workers, the model generation the lowest among live workers, so it reaches
    n only when every worker serves generation n); the process collector is left out (it would
    describe only the answering worker)."""

    def __init__(self) -> None:
        from prometheus_client import (
            CollectorRegistry,
            Counter,
            Gauge,
            Histogram,
            ProcessCollector,
        )

        self.multiprocess = multiprocess_dir() is not None
        self.registry = CollectorRegistry()
        if not self.multiprocess:
            ProcessCollector(registry=self.registry)
        self.requests = Counter(
            "winback_http_requests",
            "HTTP requests answered, by route, method and status.",
            ("route", "method", "status"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "winback_http_request_duration_seconds",
            "Time from a request's arrival to the end of its answer, by route.",
            ("route",),
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.rejects = Counter(
            "winback_http_rejects",
            "Requests refused (4xx/5xx), by reason.",
            ("reason",),
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "winback_http_requests_in_flight",
            "Requests being served now (probes and metrics not counted).",
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self.customers = Counter(
            "winback_customers_scored",
            "Customers scored in answered requests.",
            registry=self.registry,
        )
        self.reloads = Counter(
            "winback_model_reloads",
            "Model reloads, by outcome (ok or failed).",
            ("outcome",),
            registry=self.registry,
        )
        self.generation = Gauge(
            "winback_model_generation",
            "The generation of the model set serving (1 at start, +1 per accepted reload; "
            "with several workers the lowest among them).",
            registry=self.registry,
            multiprocess_mode="livemin",
        )

    def render(self) -> tuple[bytes, str]:
        """The metrics in the Prometheus text format and its content type."""
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

        if not self.multiprocess:
            return generate_latest(self.registry), CONTENT_TYPE_LATEST
        from prometheus_client.multiprocess import MultiProcessCollector

        every_worker = CollectorRegistry()
        MultiProcessCollector(every_worker)  # type: ignore[no-untyped-call]
        return generate_latest(every_worker), CONTENT_TYPE_LATEST

    def process_ended(self) -> None:
        """Drop this process's live gauges from the shared files (a worker stopping)."""
        if self.multiprocess:
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


def json_logger(name: str) -> logging.Logger:
    """The logger ``name``, writing bare JSON lines to stderr unless configured already."""
    logger = logging.getLogger(name)
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    return logger


class Observe:
    """The middleware (see the module docstring).

    Parameters
    ----------
    app
        The Starlette app.
    metrics
        Where to count.
    routes
        The app's paths: the ``route`` label (any other path is ``"other"``, so a scanner
        cannot blow up the label set).
    max_concurrency, timeout_s
        The :class:`~winback.serve.config.Limits` of the same names.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: Metrics,
        routes: frozenset[str],
        max_concurrency: int,
        timeout_s: float,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.routes = routes
        self.max_concurrency = max_concurrency
        self.timeout_s = timeout_s
        self.busy = 0
        self.log = json_logger(ACCESS_LOGGER)
        self.pid = os.getpid()
        # The labelled children of the request counter and the latency histogram, found once per
        # label set (prometheus_client's ``labels()`` checks and locks on every call). Bounded:
        # routes and methods are fixed sets, statuses a few dozen.
        self._counts: dict[tuple[str, str, int], Any] = {}
        self._latencies: dict[str, Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one request (other scope types pass through)."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        import asyncio

        start = time.perf_counter()
        path = scope.get("path", "")
        route = path if path in self.routes else "other"
        method = scope.get("method", "")
        state = scope.setdefault("state", {})
        state["deadline"] = asyncio.get_running_loop().time() + self.timeout_s
        answer: dict[str, Any] = {"status": 0, "bytes": 0}

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                answer["status"] = int(message["status"])
            elif message["type"] == "http.response.body":
                answer["bytes"] += len(message.get("body", b""))
            await send(message)

        counted = path not in _ALWAYS
        if counted and self.busy >= self.max_concurrency:
            state["reject_reason"] = "overloaded"
            await self._refuse(scope, sending)
        elif counted:
            self.busy += 1
            self.metrics.in_flight.inc()
            try:
                await self.app(scope, receive, sending)
            finally:
                self.busy -= 1
                self.metrics.in_flight.dec()
                self._record(scope, route, method, start, answer)
            return
        else:
            await self.app(scope, receive, sending)
        self._record(scope, route, method, start, answer)

    async def _refuse(self, scope: Scope, send: Send) -> None:
        problem = ProblemError(
            503,
            f"{self.max_concurrency} requests are being served (--max-concurrency); retry in a "
            "second",
            reason="overloaded",
        )
        body = problem.encode(scope.get("path", ""))
        await send(
            {
                "type": "http.response.start",
                "status": 503,
                "headers": [
                    (b"content-type", PROBLEM_TYPE.encode()),
                    (b"content-length", str(len(body)).encode()),
                    (b"retry-after", b"1"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    def _record(
        self, scope: Scope, route: str, method: str, start: float, answer: dict[str, Any]
    ) -> None:
        elapsed = time.perf_counter() - start
        state = scope.get("state", {})
        # No answer started: the client went away before one could be sent (nginx's 499).
        status = answer["status"] or 499
        reason = state.get("reject_reason")
        if status >= 400 and reason is None:
            reason = "client_closed" if status == 499 else f"status_{status}"
        key = (route, method if method in _METHODS else "other", status)
        counted = self._counts.get(key)
        if counted is None:
            counted = self._counts[key] = self.metrics.requests.labels(*key[:2], str(status))
        counted.inc()
        latency = self._latencies.get(route)
        if latency is None:
            latency = self._latencies[route] = self.metrics.latency.labels(route)
        latency.observe(elapsed)
        if reason is not None:
            self.metrics.rejects.labels(reason).inc()
        customers = state.get("customers")
        if customers:
            self.metrics.customers.inc(customers)
        client = scope.get("client")
        line: dict[str, Any] = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "method": method,
            "path": scope.get("path", ""),
            "status": status,
            "duration_ms": round(elapsed * 1000.0, 3),
            "bytes_out": answer["bytes"],
            "client": f"{client[0]}:{client[1]}" if client else None,
            "pid": self.pid,
        }
        if customers is not None:
            line["customers"] = customers
        if reason is not None:
            line["reason"] = reason
        if state.get("generation") is not None:
            line["generation"] = state["generation"]
        log = self.log
        if log.isEnabledFor(logging.INFO):
            # What ``log.info`` does but for finding the caller (a walk up the stack per line;
            # the record's file, line and function are left unknown, the message is the same).
            text = json.dumps(line, separators=(",", ":"))
            log.handle(log.makeRecord(log.name, logging.INFO, "(unknown file)", 0, text, (), None))
