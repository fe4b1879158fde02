"""The HTTP service's app (docs/serving.md#http): :func:`create_app` builds a Starlette app
around the process's :class:`~winback.serve.modelset.Models`; :func:`run` serves it with uvicorn.

Routes: ``POST /v1/score`` (JSON or Arrow IPC stream histories in, the scorer's columns out in
the same format), ``GET /v1/models``, ``GET /healthz``, ``GET /readyz``, ``GET /metrics``
(Prometheus), ``GET /openapi.json`` and, when an admin token is set, ``POST /v1/admin/reload``.
Every refusal is an RFC 9457 ``application/problem+json`` body naming the field (a JSON path
such as ``customers[3].purchases[0].ts``) and the customer; a request is answered whole or
refused, never partly, and never with a 500 for anything a client sent.

Decoding, checking, scoring and encoding run in worker threads (the kernels release the GIL),
so the event loop only moves bytes: a slow client or a large request blocks nobody else. Small
JSON bodies of a few customers with ``as_of`` (:data:`INLINE_BODY_BYTES`) are the exception:
they cost less than the hand-off to a thread, so they are scored on the event loop.
Starlette, uvicorn and prometheus_client are imported inside the functions that need them (the
optional extra ``winback[serve]``), so importing :mod:`winback.serve` stays light.
"""

from __future__ import annotations

import hmac
import json
import os
import shutil
import signal
import tempfile
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, Final

from winback.errors import WinbackConfigError
from winback.serve.arrow_body import ARROW_STREAM, score_arrow
from winback.serve.config import ENV_CONFIG, Limits, ServeConfig
from winback.serve.json_body import one_by_one, score_json, score_parsed, score_small
from winback.serve.modelset import Models, ReloadOutcome, load_model_set
from winback.serve.observe import (
    EVENT_LOGGER,
    MULTIPROC_ENV,
    Metrics,
    Observe,
    json_logger,
    multiprocess_dir,
)
from winback.serve.openapi import openapi_spec
from winback.serve.problems import PROBLEM_TYPE, ProblemError
from winback.serve.workers import ENV_STATE_DIR, WATCH_INTERVAL_S, ReloadBoard

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response

__all__ = [
    "ENV_ADMIN_TOKEN",
    "ENV_CONFIG",
    "ENV_PRELOAD",
    "app_from_env",
    "create_app",
    "run",
    "settle_heap",
    "warm_up",
]

#: The environment variable holding the admin token (``POST /v1/admin/reload`` is off without).
ENV_ADMIN_TOKEN: Final = "WINBACK_ADMIN_TOKEN"
#: The environment variable that tells each uvicorn worker to run :func:`winback.preload.preload`
#: before it serves (``winback serve --preload``).
ENV_PRELOAD: Final = "WINBACK_SERVE_PRELOAD"
#: JSON bodies up to this many bytes (≈ 150 purchases) are decoded and checked on the event loop,
#: and scored there when :func:`~winback.serve.json_body.score_parsed` takes them customer by
#: customer: under a millisecond of work, less than the hand-off to a thread.
INLINE_BODY_BYTES: Final = 8192
#: The paths of the app (the metrics' route label).
ROUTES: Final = frozenset(
    {
        "/v1/score",
        "/v1/models",
        "/v1/admin/reload",
        "/healthz",
        "/readyz",
        "/metrics",
        "/openapi.json",
    }
)


def _problem_response(problem: ProblemError, request: Request) -> Response:
    from starlette.responses import Response

    request.state.reject_reason = problem.reason
    return Response(
        problem.encode(request.url.path),
        status_code=problem.status,
        media_type=PROBLEM_TYPE,
        headers=problem.headers,
    )


def _deadline(scope: Any, limits: Limits) -> float:
    """Seconds left of the request's time (set by the middleware at its arrival)."""
    import asyncio

    now = asyncio.get_running_loop().time()
    deadline = scope.get("state", {}).get("deadline", now + limits.timeout_s)
    return float(deadline) - now


async def _read_body(scope: Any, receive: Any, declared: bytes | None, limits: Limits) -> bytes:
    """The body, refused with 413 as soon as it passes the size limit (the declared length
    first), 408 when it has not all arrived within the request's time (a client trickling
    bytes holds no thread: only this coroutine waits), 499 when the client goes away.

    Reads the ASGI messages itself under one timer of the event loop that cancels this task at
    the deadline (what ``asyncio.timeout_at`` does, without its context-manager object: a
    fraction of its cost, and of ``anyio.fail_after`` around Starlette's ``request.stream()``,
    paid by every request)."""
    import asyncio

    limit = limits.max_body_bytes
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ProblemError(
            413, f"the body is {declared.decode()} bytes; the limit is {limit} (--max-body-bytes)"
        )
    chunks = []
    size = 0
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None  # an ASGI app runs in a task
    cancelling = task.cancelling()
    expired: list[bool] = []

    def expire() -> None:
        expired.append(True)
        task.cancel()

    deadline = scope.get("state", {}).get("deadline")  # set by the middleware at arrival
    timer = loop.call_at(loop.time() + limits.timeout_s if deadline is None else deadline, expire)
    try:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ProblemError(499, "the client closed the connection while sending")
            chunk = message.get("body", b"")
            if chunk:
                size += len(chunk)
                if size > limit:
                    raise ProblemError(
                        413, f"the body passes the limit of {limit} bytes (--max-body-bytes)"
                    )
                chunks.append(chunk)
            if not message.get("more_body", False):
                break
    except asyncio.CancelledError:
        # Ours (the timer fired) unless someone else cancelled the task too: theirs propagates.
        if expired and task.uncancel() <= cancelling:
            raise ProblemError(
                408,
                f"the body did not arrive within {limits.timeout_s:g} s (--timeout); {size} "
                "bytes came",
                headers={"Connection": "close"},
            ) from None
        raise
    finally:
        timer.cancel()
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def _answer(
    send: Any, status: int, media: str, body: bytes, headers: dict[str, str] | None = None
) -> None:
    """Send a whole answer (what Starlette's ``Response`` sends, without building one)."""
    raw = [(b"content-type", media.encode()), (b"content-length", b"%d" % len(body))]
    if headers:
        raw += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def create_app(
    config: ServeConfig,
    *,
    admin_token: str | None = None,
    models: Models | None = None,
) -> Starlette:
    """The Starlette app serving ``config`` (docs/serving.md#http), wrapped in the metrics,
    access-log and load-shedding middleware.

    Parameters
    ----------
    config
        Model directory, rules, value settings and :class:`Limits`.
    admin_token
        Turns on ``POST /v1/admin/reload`` for requests carrying ``Authorization: Bearer
        <token>``; None (the default) leaves it off (404).
    models
        The loaded models (default: loaded from ``config`` now, every file validated).
    """
    import anyio
    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
    from starlette.middleware import Middleware
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    if models is None:
        models = Models(config, load_model_set(config, 1))
    limits = config.limits
    metrics = Metrics()
    metrics.generation.set(models.current.generation)
    events = json_logger(EVENT_LOGGER)
    token = None if not admin_token else admin_token.encode()
    spec = json.dumps(openapi_spec()).encode()
    # With several worker processes: the board through which an admin reload reaches them all.
    board = ReloadBoard.from_env()

    async def score(scope: Any, receive: Any, send: Any) -> None:
        """``POST /v1/score`` as a plain ASGI app: no Starlette ``Request`` or ``Response``
        (their cost is a share of a one-customer request's)."""
        state = scope.setdefault("state", {})
        current = models.current  # this request's model set, whatever reloads happen meanwhile
        state["generation"] = current.generation
        kind_raw: bytes | None = None
        declared: bytes | None = None
        for name, value in scope["headers"]:  # the first of each, as Starlette's Headers.get
            if name == b"content-type" and kind_raw is None:
                kind_raw = value
            elif name == b"content-length" and declared is None:
                declared = value
        try:
            if kind_raw is None or kind_raw == b"application/json":  # the usual: no parsing
                kind = "application/json"
            else:
                kind = kind_raw.decode("latin-1").split(";")[0].strip()
            if kind not in ("application/json", "", ARROW_STREAM):
                raise ProblemError(
                    415, f"content type {kind!r}: send application/json or {ARROW_STREAM}"
                )
            as_of = None
            if scope["query_string"]:  # parsed only when there is one: most requests have none
                from starlette.datastructures import QueryParams

                as_of = QueryParams(scope["query_string"]).get("as_of")
            if as_of is not None and kind != ARROW_STREAM:
                raise ProblemError(
                    422,
                    'as_of goes in the JSON body ({"as_of": ...}); the query parameter is for '
                    "Arrow bodies",
                    field="as_of",
                )
            body = await _read_body(scope, receive, declared, limits)
            try:
                small = None
                if kind != ARROW_STREAM and len(body) <= INLINE_BODY_BYTES:
                    # A small JSON body is decoded and checked on the event loop and, when it
                    # is scored customer by customer (well under a millisecond), scored there
                    # too: less work than the hand-off to a thread and back. One customer
                    # comes back scored already.
                    done = score_small(current.scorer, body, limits)
                    if isinstance(done, tuple):
                        answer, n = done
                        state["customers"] = n
                        await _answer(send, 200, "application/json", answer)
                        return
                    small = done
                    if one_by_one(small):
                        answer, n = score_parsed(current.scorer, small)
                        state["customers"] = n
                        await _answer(send, 200, "application/json", answer)
                        return
                with anyio.fail_after(max(_deadline(scope, limits), 0.0)):
                    if kind == ARROW_STREAM:
                        answer, n = await anyio.to_thread.run_sync(
                            score_arrow, current.scorer, body, limits, as_of, abandon_on_cancel=True
                        )
                    elif small is not None:
                        answer, n = await anyio.to_thread.run_sync(
                            score_parsed, current.scorer, small, abandon_on_cancel=True
                        )
                    else:
                        answer, n = await anyio.to_thread.run_sync(
                            score_json, current.scorer, body, limits, abandon_on_cancel=True
                        )
            except TimeoutError:
                raise ProblemError(
                    503,
                    f"scoring did not finish within {limits.timeout_s:g} s (--timeout); send "
                    "fewer customers per request or retry",
                    reason="timeout",
                    headers={"Retry-After": "1"},
                ) from None
        except ProblemError as problem:
            state["reject_reason"] = problem.reason
            instance = scope.get("root_path", "") + scope["path"]
            await _answer(
                send, problem.status, PROBLEM_TYPE, problem.encode(instance), problem.headers
            )
            return
        state["customers"] = n
        await _answer(
            send, 200, ARROW_STREAM if kind == ARROW_STREAM else "application/json", answer
        )

    class _Endpoint:
        """An ASGI app object: Starlette routes to it as it is (a function it would wrap in a
        ``Request``/``Response`` handler)."""

        def __init__(self, app: Any) -> None:
            self.app = app

        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            await self.app(scope, receive, send)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        # The models are loaded and probed before the app exists; a reload swaps them whole.
        return JSONResponse({"status": "ready", "generation": models.current.generation})

    async def list_models(request: Request) -> Response:
        return JSONResponse({**models.describe(), "limits": asdict(limits)})

    async def metrics_text(request: Request) -> Response:
        body, kind = metrics.render()
        return Response(body, headers={"Content-Type": kind})

    async def openapi(request: Request) -> Response:
        return Response(spec, media_type="application/json")

    async def reload_models(trigger: str) -> ReloadOutcome:
        outcome = await anyio.to_thread.run_sync(models.reload)
        metrics.reloads.labels("ok" if outcome.ok else "failed").inc()
        metrics.generation.set(models.current.generation)
        line = {"event": "reload", "trigger": trigger, **outcome.as_dict()}
        (events.info if outcome.ok else events.error)(json.dumps(line))
        return outcome

    async def admin_reload(request: Request) -> Response:
        try:
            if token is None:
                raise ProblemError(
                    404, "the admin endpoints are off: start the service with an admin token"
                )
            given = request.headers.get("authorization", "")
            scheme, _, credential = given.partition(" ")
            # Constant-time comparison: the answer's timing tells nothing about the token.
            if scheme.lower() != "bearer" or not hmac.compare_digest(
                credential.strip().encode(), token
            ):
                raise ProblemError(
                    401,
                    "send the admin token as Authorization: Bearer <token>",
                    headers={"WWW-Authenticate": 'Bearer realm="winback-admin"'},
                )
            outcome = await reload_models("admin")
            if outcome.ok and board is not None:
                board.post()  # the other workers reload too (winback.serve.workers)
            if not outcome.ok:
                raise ProblemError(
                    422,
                    f"the reload was refused and generation {outcome.generation} keeps serving: "
                    f"{outcome.error}",
                    reason="reload_failed",
                    extra={"reload": outcome.as_dict()},
                )
        except ProblemError as problem:
            return _problem_response(problem, request)
        return JSONResponse({"reload": outcome.as_dict(), "models": models.describe()})

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        problem = ProblemError(exc.status_code, str(exc.detail), headers=dict(exc.headers or {}))
        return _problem_response(problem, request)

    async def server_error(request: Request, exc: Exception) -> Response:
        problem = ProblemError(500, "the server failed on this request; it is logged")
        return _problem_response(problem, request)

    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        import asyncio

        loop = asyncio.get_running_loop()
        tasks: set[asyncio.Task[ReloadOutcome]] = set()

        def on_hup() -> None:
            task = loop.create_task(reload_models("SIGHUP"))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

        async def watch(board: ReloadBoard) -> None:
            while True:
                await asyncio.sleep(WATCH_INTERVAL_S)
                if board.news():
                    await reload_models("another worker")

        try:
            loop.add_signal_handler(signal.SIGHUP, on_hup)
            installed = True
        except (ValueError, RuntimeError, NotImplementedError, AttributeError):
            installed = False  # not the main thread (an embedding test) or no SIGHUP here
        watcher = None if board is None else loop.create_task(watch(board))
        settle_heap()
        try:
            yield
        finally:
            if installed:
                loop.remove_signal_handler(signal.SIGHUP)
            if watcher is not None:
                watcher.cancel()
            metrics.process_ended()

    return Starlette(
        routes=[
            Route("/v1/score", _Endpoint(score), methods=["POST"]),
            Route("/v1/models", list_models, methods=["GET"]),
            Route("/v1/admin/reload", admin_reload, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/metrics", metrics_text, methods=["GET"]),
            Route("/openapi.json", openapi, methods=["GET"]),
        ],
        middleware=[
            Middleware(
                Observe,
                metrics=metrics,
                routes=ROUTES,
                max_concurrency=limits.max_concurrency,
                timeout_s=limits.timeout_s,
            )
        ],
        exception_handlers={HTTPException: http_error, Exception: server_error},
        lifespan=lifespan,
    )


def settle_heap() -> None:
    """Collect once, then move every object the process holds into the garbage collector's
    permanent generation (``gc.freeze``): called at start-up, when the modules, models and app
    are loaded and no request is in flight. Python's full collections then no longer walk the
    ≈ million objects of numpy, SciPy, Polars and the models: each took ≈ 100 ms of the event
    loop, and one came during a load run's first seconds, stalling every request in flight
    (benches/README.md, "this session (serve15c)"). What is frozen stays alive (it was
    anyway); later garbage is collected as before."""
    import gc

    gc.collect()
    gc.freeze()


def app_from_env() -> Starlette:
    """The app a uvicorn worker builds (``factory=True``) from :data:`ENV_CONFIG` and
    :data:`ENV_ADMIN_TOKEN`."""
    text = os.environ.get(ENV_CONFIG)
    if not text:
        raise WinbackConfigError(f"{ENV_CONFIG} is not set; start the service with winback serve")
    config = ServeConfig.from_json(text)
    if os.environ.get(ENV_PRELOAD) == "1":
        warm_up()
    return create_app(config, admin_token=os.environ.get(ENV_ADMIN_TOKEN))


def warm_up() -> None:
    """Load (or compile and cache) the model and value kernels before the process serves, so
    the first requests do not pay for them (docs/serving.md#start-up); one JSON event line
    says how long it took."""
    import time

    from winback.preload import preload

    started = time.perf_counter()
    preload()
    seconds = round(time.perf_counter() - started, 3)
    json_logger(EVENT_LOGGER).info(
        json.dumps({"event": "preload", "pid": os.getpid(), "seconds": seconds})
    )


def run(
    config: ServeConfig,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    log_level: str = "info",
    admin_token: str | None = None,
    preload: bool = False,
) -> None:
    """Serve ``config`` with uvicorn (blocks until stopped). The models are loaded, validated
    and probed here first, so a bad directory fails before any port is bound. With
    ``preload``, each server process runs :func:`warm_up` before it binds or answers
    ``/readyz`` (docs/serving.md#start-up). uvicorn's own
    access log is off: the app writes one JSON line per request (docs/serving.md#http-monitor).
    """
    try:
        import uvicorn
    except ImportError:
        raise WinbackConfigError(
            "winback serve needs the serve extra: pip install 'winback[serve]'"
        ) from None
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise WinbackConfigError(f"workers={workers!r} must be a whole number ≥ 1")
    first = load_model_set(config, 1)  # a WinbackReloadError (a WinbackConfigError) stops here
    # The workers (and the header deadline of winback.serve.protocol) read the configuration
    # from the environment.
    os.environ[ENV_CONFIG] = config.to_json()
    from winback.serve.protocol import protocol_name

    protocol = protocol_name()
    if workers == 1:
        if preload:
            warm_up()
        app = create_app(config, admin_token=admin_token, models=Models(config, first))
        uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False, http=protocol)
        return
    if admin_token:
        os.environ[ENV_ADMIN_TOKEN] = admin_token
    if preload:
        os.environ[ENV_PRELOAD] = "1"
    # What the workers share (winback.serve.workers): the reload board and, unless the caller
    # chose a directory, prometheus_client's multiprocess metrics, so /metrics adds up all the
    # workers whichever one answers. Removed when the server stops.
    state = tempfile.mkdtemp(prefix="winback-serve-")
    os.environ[ENV_STATE_DIR] = state
    ours = not multiprocess_dir()
    if ours:
        os.environ[MULTIPROC_ENV] = os.path.join(state, "metrics")
        os.mkdir(os.environ[MULTIPROC_ENV])
    try:
        _run_workers(uvicorn, host, port, workers, log_level, protocol)
    finally:
        # Nothing of this server outlives it (a caller running several in one process).
        os.environ.pop(ENV_STATE_DIR, None)
        if ours:
            os.environ.pop(MULTIPROC_ENV, None)
        shutil.rmtree(state, ignore_errors=True)


def _run_workers(
    uvicorn: Any, host: str, port: int, workers: int, log_level: str, protocol: str
) -> None:
    uvicorn.run(
        "winback.serve.app:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        access_log=False,
        http=protocol,
        # A new worker loads and probes the models before it is ready; on SIGHUP uvicorn waits
        # this long for it before keeping the old worker (its default, 5 s, is short for that
        # on a busy machine).
        timeout_worker_healthcheck=30,
    )
