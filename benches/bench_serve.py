"""Load benchmark of the HTTP scoring service (``winback serve``, docs/serving.md#http).

Load generator: the small asyncio HTTP/1.1 client below (``Load``): N keep-alive connections,
each sending its next request as soon as the previous answer has been read in full (closed
loop), for a fixed duration. Latency is per request, from writing it to reading its last byte.
It runs in one Python process on the same machine as the server, so both share the cores:
say so when quoting the figures, and compare against the hello-world row of the same run.

Server: ``winback serve`` as a subprocess on 127.0.0.1 (one uvicorn worker, the JSON access log
to a file, ``--max-concurrency`` above the connection count), models BG/NBD + Gamma–Gamma
fitted on the bundled CDNOW data, value levels and quadrant cuts set, the "strategy" preset.

Scenarios, each at 1, 16 and 64 connections (``--connections``):

- ``hello``: ``GET /healthz`` — the same app and server's hello-world endpoint (a constant JSON
  answer through the same middleware), the ceiling of the stack on this machine;
- ``one``: ``POST /v1/score`` with one customer of 50 purchases (JSON);
- ``bulk``: ``POST /v1/score`` with 1,000 customers (``benches/gen_data.py``, seeded, ≈ 15
  purchases each; JSON), and ``bulk-arrow`` the same as an Arrow IPC stream.

Reported per run: requests, errors (anything but 200, or a broken connection), req/s, p50, p90,
p99 and max latency in ms, the server's RSS (MiB) at the start and the end of the run (and
its maximum, sampled every 0.5 s), and the CPU time per request of the server process and of
the load generator (what a request costs without the wait for a core, which the machine's load
does not change). Targets of issue 15: ``one`` at 64 connections ≥ half of
``hello``'s req/s with p99 < 20 ms; ``bulk`` p99 < 50 ms.

Usage::

    python benches/bench_serve.py [--duration 60] [--connections 1 16 64]
                                  [--scenarios hello one bulk bulk-arrow] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gen_data import generate

import winback
from winback.datasets import load_cdnow
from winback.models import BetaGeoModel, GammaGammaModel

VALUE = {"horizon": 12, "value_levels": [20.0, 100.0], "quadrant_cuts": [50.0, 2.0]}


# -- the load generator ----------------------------------------------------------------------------
@dataclass
class Result:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0


async def _connection(host: str, port: int, payload: bytes, until: float, result: Result) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    clock = time.perf_counter
    try:
        while clock() < until:
            start = clock()
            writer.write(payload)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n")[1:]:
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            result.latencies.append(clock() - start)
            if status != 200:
                result.errors += 1
    except (OSError, asyncio.IncompleteReadError):
        result.errors += 1
    finally:
        writer.close()


async def load(host: str, port: int, payload: bytes, connections: int, seconds: float) -> Result:
    """Closed-loop load: ``connections`` keep-alive connections for ``seconds``."""
    result = Result()
    until = time.perf_counter() + seconds
    await asyncio.gather(
        *(_connection(host, port, payload, until, result) for _ in range(connections))
    )
    return result


def http_request(
    method: str, path: str, body: bytes = b"", kind: str = "application/json"
) -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    if method == "POST":
        head += f"Content-Type: {kind}\r\nContent-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + body


# -- the server ------------------------------------------------------------------------------------
def fit_models(folder: Path) -> None:
    stats = winback.summary(load_cdnow(), as_of="1998-06-30", return_info=True)
    (folder / "models").mkdir()
    BetaGeoModel().fit(stats).save(folder / "models" / "bgnbd.json")
    GammaGammaModel().fit(stats).save(folder / "models" / "gg.json")
    (folder / "value.json").write_text(json.dumps(VALUE))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (``/proc/<pid>/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_server(folder: Path, port: int, log: Any) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "winback.cli", "serve", "--models", str(folder / "models")),
            *("--value", str(folder / "value.json"), "--port", str(port)),
            *("--max-concurrency", "1000", "--max-customers", "10000"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(http_request("GET", "/readyz"))
                if sock.recv(12).startswith(b"HTTP/1.1 200"):
                    return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("winback serve did not start:\n" + Path(log.name).read_text()[-3000:])


# -- the payloads ----------------------------------------------------------------------------------
def one_customer() -> bytes:
    rng = np.random.default_rng(0)
    days = np.sort(rng.integers(0, 420, 50))
    start = np.datetime64("1997-01-01T00:00:00", "s")
    times = (
        start + days.astype("timedelta64[D]") + rng.integers(0, 86_400, 50).astype("timedelta64[s]")
    )
    amounts = rng.gamma(2.0, 20.0, 50)
    purchases = [
        {"ts": str(t), "amount": round(float(a), 2)} for t, a in zip(times, amounts, strict=True)
    ]
    body = {"as_of": "1998-06-30", "customers": [{"customer_id": 1017, "purchases": purchases}]}
    return json.dumps(body).encode()


def bulk_frame(customers: int = 1_000) -> pl.DataFrame:
    tx = generate(customers, seed=1)
    return tx.select("customer_id", "ts", "amount")


def bulk_json(frame: pl.DataFrame) -> bytes:
    customers = [
        {
            "customer_id": int(cid),
            "purchases": [
                {"ts": ts.isoformat(), "amount": float(amount)}
                for ts, amount in zip(group["ts"], group["amount"], strict=True)
            ],
        }
        for (cid,), group in frame.group_by("customer_id", maintain_order=True)
    ]
    return json.dumps({"customers": customers}).encode()


def bulk_arrow(frame: pl.DataFrame) -> bytes:
    out = io.BytesIO()
    frame.write_ipc_stream(out)
    return out.getvalue()


def scenarios() -> dict[str, bytes]:
    frame = bulk_frame()
    return {
        "hello": http_request("GET", "/healthz"),
        "one": http_request("POST", "/v1/score", one_customer()),
        "bulk": http_request("POST", "/v1/score", bulk_json(frame)),
        "bulk-arrow": http_request(
            "POST",
            "/v1/score",
            bulk_arrow(frame),
            "application/vnd.apache.arrow.stream",
        ),
    }


def run_one(
    port: int, pid: int, payload: bytes, connections: int, seconds: float
) -> dict[str, Any]:
    samples = [rss_mib(pid)]
    server_cpu, client_cpu = cpu_seconds(pid), time.process_time()

    async def main() -> Result:
        task = asyncio.create_task(load("127.0.0.1", port, payload, connections, seconds))
        while not task.done():
            await asyncio.sleep(0.5)
            samples.append(rss_mib(pid))
        return await task

    result = asyncio.run(main())
    server_cpu, client_cpu = cpu_seconds(pid) - server_cpu, time.process_time() - client_cpu
    ms = np.array(result.latencies) * 1000.0
    done = max(len(result.latencies), 1)
    return {
        "connections": connections,
        "requests": len(result.latencies),
        "errors": result.errors,
        "req_s": len(result.latencies) / seconds,
        "p50_ms": float(np.percentile(ms, 50)) if ms.size else float("nan"),
        "p90_ms": float(np.percentile(ms, 90)) if ms.size else float("nan"),
        "p99_ms": float(np.percentile(ms, 99)) if ms.size else float("nan"),
        "max_ms": float(ms.max()) if ms.size else float("nan"),
        "rss_start_mib": samples[0],
        "rss_end_mib": samples[-1],
        "rss_max_mib": max(samples),
        # CPU time per request (not waiting for a core): what the load does not change.
        "server_cpu_ms": 1000.0 * server_cpu / done,
        "client_cpu_ms": 1000.0 * client_cpu / done,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds per run")
    parser.add_argument("--connections", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--scenarios", nargs="+", default=["hello", "one", "bulk", "bulk-arrow"])
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds before each scenario")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    load_before = os.getloadavg()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        fit_models(folder)
        port = free_port()
        # The access log (one JSON line per request) is part of the cost; it goes to a file.
        log = (folder / "serve.log").open("wb")
        proc = start_server(folder, port, log)
        try:
            payloads = scenarios()
            for name in args.scenarios:
                payload = payloads[name]
                run_one(port, proc.pid, payload, 4, args.warmup)
                for connections in args.connections:
                    row = {
                        "scenario": name,
                        **run_one(port, proc.pid, payload, connections, args.duration),
                    }
                    rows.append(row)
                    print(
                        f"{name:>10} c={connections:<3} {row['req_s']:8.1f} req/s  "
                        f"p50 {row['p50_ms']:7.2f}  p90 {row['p90_ms']:7.2f}  p99 {row['p99_ms']:7.2f} ms  "
                        f"errors {row['errors']}  RSS {row['rss_start_mib']:.0f}→{row['rss_end_mib']:.0f} "
                        f"(max {row['rss_max_mib']:.0f}) MiB  CPU/request server "
                        f"{row['server_cpu_ms']:.3f} client {row['client_cpu_ms']:.3f} ms",
                        flush=True,
                    )
        finally:
            proc.terminate()
            proc.wait(timeout=30)
            log.close()
    hello = {r["connections"]: r["req_s"] for r in rows if r["scenario"] == "hello"}
    print()
    print(
        "| scenario | conns | req/s | vs hello | p50 ms | p90 ms | p99 ms | errors | "
        "RSS start→end (max) MiB | CPU ms/request server, client |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|---|")
    for r in rows:
        ratio = r["req_s"] / hello[r["connections"]] if r["connections"] in hello else float("nan")
        print(
            f"| {r['scenario']} | {r['connections']} | {r['req_s']:.0f} | {ratio:.2f} | "
            f"{r['p50_ms']:.2f} | {r['p90_ms']:.2f} | {r['p99_ms']:.2f} | {r['errors']} | "
            f"{r['rss_start_mib']:.0f}→{r['rss_end_mib']:.0f} ({r['rss_max_mib']:.0f}) | "
            f"{r['server_cpu_ms']:.3f}, {r['client_cpu_ms']:.3f} |"
        )
    meta = {
        "duration_s": args.duration,
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "generator": "benches/bench_serve.py asyncio HTTP/1.1 keep-alive client (same machine)",
    }
    print(f"\nload average before {load_before}, after {meta['loadavg_after']}")
    if args.json:
        args.json.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
