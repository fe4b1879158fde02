"""Benchmark larger-than-memory scoring: ``winback score --memory-limit`` against DuckDB.

One run (docs/methods.md#out-of-core, issue 7): generate a Parquet data set a chunk of customers at
a time (``gen_data.write_chunked``: every customer's rows spread over every file), then score it
twice, each side in its own process with the same memory limit:

(a) ``winback``: ``winback score DATA_DIR --as-of AS_OF --memory-limit LIMIT --spill-dir TMP
    -o winback.parquet`` — stream, partition by customer into spill files, score by parts,
    append to the output;
(b) ``duckdb``: the SQL of ``bench_silence.py`` (``DUCKDB_SQL``, the same scoring) over
    ``read_parquet('DATA_DIR/*.parquet')`` with ``SET memory_limit = LIMIT``,
    ``SET temp_directory = TMP``, written with ``COPY … TO 'duckdb.parquet'``. Its final
    ``ORDER BY customer_id`` is left out, as winback's output is sorted per part only.

Per side: wall time, peak resident memory of the process (``/usr/bin/time -v``'s maximum
resident set size: ``ru_maxrss`` from ``wait4``, its waited-for children included), rows/s (input rows / wall), and the peak disk used by its temporary files
(polled every 0.2 s). Afterwards DuckDB checks that both outputs hold the same customers and,
on every scored customer, the same n, max gap, TrF and S (relative 1e-9). The generated data and
both outputs are deleted unless ``--keep-data``.

Usage::

    python benches/bench_spill.py --customers 3333333 --memory-limit 8GB [--id-kind str]
                                  [--files 16] [--work-dir DIR] [--json out.json]

About 15 rows a customer: ``--customers 3333333`` ≈ 50M rows (≈ 0.7 GB of Parquet),
``33333333`` ≈ 500M rows (≈ 6.7 GB of Parquet, ≈ 12 GB of spill for winback). The tests call
:func:`run` with a tiny size.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gen_data import window, write_chunked

__all__ = ["run"]

START = "2023-01-01"
YEARS = 2.0
TRF_CUTS = (0.4, 0.6, 0.8, 0.95)
S_CUTS = (1.0, 2.0)
RTOL = 1e-9
MB = 1 << 20


def _dir_bytes(path: Path) -> int:
    total = 0
    for root, _, names in os.walk(path):
        for name in names:
            with contextlib.suppress(OSError):  # a spill file removed meanwhile
                total += os.stat(os.path.join(root, name)).st_size
    return total


class _PeakDisk:
    """Polls the size of a directory tree in a thread; ``peak`` is the largest seen."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _dir_bytes(self.path))
            self._stop.wait(0.2)

    def __enter__(self) -> _PeakDisk:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _timed(command: list[str], temp_dir: Path) -> dict[str, Any]:
    """Runs ``command``; wall time, peak RSS (of the process and its children) and the peak
    disk used under ``temp_dir``."""
    temp_dir.mkdir(parents=True, exist_ok=True)
    with _PeakDisk(temp_dir) as disk:
        began = time.perf_counter()
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        stdout, stderr = process.communicate()
        wall = time.perf_counter() - began
    return {
        "returncode": process.returncode,
        "seconds": wall,
        "stdout": stdout.decode(),
        "stderr": stderr.decode(),
        "temp_peak_mb": disk.peak / MB,
    }


def _peak_rss_mb(stderr: str) -> float | None:
    for line in stderr.splitlines():
        if "Maximum resident set size" in line:
            return int(line.rsplit(":", 1)[1]) / 1024
    return None


def _with_time(command: list[str]) -> list[str]:
    """Wraps ``command`` in GNU time -v when available (peak RSS of the process tree)."""
    if Path("/usr/bin/time").exists():
        return ["/usr/bin/time", "-v", *command]
    return command


def duckdb_sql(as_of_iso: str) -> str:
    """``bench_silence.DUCKDB_SQL`` with its parameters as literals and without the final
    ``ORDER BY`` (for ``COPY … TO``)."""
    from bench_silence import DUCKDB_SQL

    sql = DUCKDB_SQL.strip()
    assert sql.endswith("ORDER BY customer_id")
    sql = sql[: -len("ORDER BY customer_id")]
    values = {"$as_of_day": f"DATE '{as_of_iso[:10]}'", "$as_of": f"TIMESTAMP '{as_of_iso}'"}
    values.update({f"$t{i + 1}": repr(cut) for i, cut in enumerate(TRF_CUTS)})
    values.update({f"$s{i + 1}": repr(cut) for i, cut in enumerate(S_CUTS)})
    for name, literal in values.items():  # $as_of_day before $as_of
        sql = sql.replace(name, literal)
    return sql


def _duckdb_worker(data_dir: str, output: str, limit: str, temp_dir: str, as_of: str) -> int:
    import duckdb

    con = duckdb.connect()
    con.execute(f"SET memory_limit = '{limit}'")
    con.execute(f"SET temp_directory = '{temp_dir}'")
    con.execute(f"SET threads = {os.cpu_count() or 1}")
    con.execute("SET preserve_insertion_order = false")
    con.execute(f"CREATE VIEW tx AS SELECT * FROM read_parquet('{data_dir}/*.parquet')")
    con.execute(f"COPY ({duckdb_sql(as_of)}) TO '{output}' (FORMAT parquet)")
    con.close()
    return 0


def _compare(winback_out: Path, duckdb_out: Path, limit: str) -> dict[str, int]:
    import duckdb

    con = duckdb.connect()
    con.execute(f"SET memory_limit = '{limit}'")
    row = con.execute(
        f"""
        SELECT count(*) AS customers,
               count(*) FILTER (WHERE w.customer_id IS NULL OR d.customer_id IS NULL) AS unmatched,
               count(*) FILTER (WHERE w.status = 'scored') AS scored,
               count(*) FILTER (WHERE w.status = 'scored' AND (
                   w.n_occasions <> d.n_occasions OR w.max_gap_days <> d.max_gap_days
                   OR abs(w.rank_ratio - d.rank_ratio) > {RTOL} * abs(d.rank_ratio)
                   OR abs(w.silence_score - d.silence_score) > {RTOL} * abs(d.silence_score)
               )) AS disagreeing
        FROM read_parquet('{winback_out}') w
        FULL JOIN read_parquet('{duckdb_out}') d USING (customer_id)
        """
    ).fetchone()
    con.close()
    assert row is not None
    return dict(zip(("customers", "unmatched", "scored", "disagreeing"), row, strict=True))


def run(
    customers: int,
    *,
    memory_limit: str = "8GB",
    files: int = 16,
    chunk_customers: int = 1_000_000,
    id_kind: str = "int",
    seed: int = 0,
    work_dir: Path | None = None,
    keep_data: bool = False,
    verbose: bool = False,
) -> dict[str, Any]:
    """Generates the data, scores it with winback and DuckDB, compares; returns the figures."""
    import duckdb

    import winback

    work = Path(work_dir) if work_dir is not None else Path.cwd() / "bench-spill-work"
    work.mkdir(parents=True, exist_ok=True)
    data_dir = work / "data"
    outputs = {"winback": work / "winback.parquet", "duckdb": work / "duckdb.parquet"}
    temp = {"winback": work / "spill-winback", "duckdb": work / "spill-duckdb"}
    _, as_of = window(START, YEARS)
    as_of_iso = as_of.isoformat(sep=" ")
    result: dict[str, Any] = {
        "customers": customers,
        "memory_limit": memory_limit,
        "files": files,
        "id_kind": id_kind,
        "as_of": as_of_iso,
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "versions": {"winback": winback.__version__, "duckdb": duckdb.__version__},
        "load_before": os.getloadavg(),
    }
    try:
        began = time.perf_counter()
        rows, _ = write_chunked(
            customers,
            data_dir,
            files=max(files, 2),
            chunk_customers=chunk_customers,
            seed=seed,
            years=YEARS,
            start=START,
            id_kind="str" if id_kind == "str" else "int",
        )
        result["rows"] = rows
        result["generate_seconds"] = time.perf_counter() - began
        result["input_disk_mb"] = _dir_bytes(data_dir) / MB
        if verbose:
            print(
                f"{rows:,} rows, {customers:,} customers in {result['input_disk_mb']:,.0f} MB of "
                f"Parquet, generated in {result['generate_seconds']:.0f}s",
                flush=True,
            )
        commands = {
            "winback": [
                sys.executable,
                "-m",
                "winback.cli",
                "--quiet",
                "score",
                str(data_dir),
                "-o",
                str(outputs["winback"]),
                "--as-of",
                as_of.isoformat(),
                "--memory-limit",
                memory_limit,
                "--spill-dir",
                str(temp["winback"]),
                "--json",
            ],
            "duckdb": [
                sys.executable,
                str(Path(__file__).resolve()),
                "--duckdb-worker",
                str(data_dir),
                str(outputs["duckdb"]),
                memory_limit,
                str(temp["duckdb"]),
                as_of_iso,
            ],
        }
        sides = []
        for name, command in commands.items():
            measured = _timed(_with_time(command), temp[name])
            side = {
                "implementation": name,
                "seconds": measured["seconds"],
                "rows_per_s": rows / measured["seconds"],
                "peak_rss_mb": _peak_rss_mb(measured["stderr"]),
                "temp_peak_mb": measured["temp_peak_mb"],
            }
            if measured["returncode"] != 0:  # e.g. DuckDB's out-of-memory error: a result too
                side["error"] = _error_line(measured["stderr"])
            else:
                side["output_mb"] = outputs[name].stat().st_size / MB
            if name == "winback" and "error" not in side:
                side["info"] = json.loads(measured["stdout"])
            sides.append(side)
            if verbose:
                print(format_side(side), flush=True)
        base = sides[0]["seconds"]
        for side in sides:
            side["time_vs_winback"] = side["seconds"] / base
        result["sides"] = sides
        if not any("error" in side for side in sides):
            result["agreement"] = _compare(outputs["winback"], outputs["duckdb"], memory_limit)
        result["load_after"] = os.getloadavg()
    finally:
        if not keep_data:
            shutil.rmtree(data_dir, ignore_errors=True)
            for path in outputs.values():
                path.unlink(missing_ok=True)
        for path in temp.values():
            shutil.rmtree(path, ignore_errors=True)
    agreement = result.get("agreement")
    if agreement and (agreement["unmatched"] or agreement["disagreeing"]):
        raise RuntimeError(f"winback and DuckDB disagree: {agreement}")
    return result


def _error_line(stderr: str) -> str:
    """The exception line of a failed side's stderr (its last line naming an error)."""
    lines = [line for line in stderr.splitlines() if "Error" in line or "Exception" in line]
    return lines[-1].strip() if lines else stderr.strip()[-300:]


def format_side(side: dict[str, Any]) -> str:
    rss = side["peak_rss_mb"]
    failed = f"  FAILED: {side['error']}" if "error" in side else ""
    return failed + (
        f"{side['implementation']:>8}: {side['seconds']:8.1f} s  {side['rows_per_s'] / 1e6:6.2f}M "
        f"rows/s  peak RSS {'?' if rss is None else f'{rss:,.0f}'} MB  temp peak "
        f"{side['temp_peak_mb']:,.0f} MB"
    )


def format_table(result: dict[str, Any]) -> str:
    lines = [
        "| implementation | rows | input on disk | temp files peak | wall s | peak RSS MB | rows/s "
        "| time × winback |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for side in result["sides"]:
        lines.append(
            f"| {side['implementation']} | {result['rows']:,} | {result['input_disk_mb']:,.0f} MB "
            f"| {side['temp_peak_mb']:,.0f} MB | {side['seconds']:,.1f} | "
            f"{side['peak_rss_mb'] or 0:,.0f} | {side['rows_per_s'] / 1e6:.2f}M | "
            f"{side['time_vs_winback']:.2f} |"
            + (f" failed: {side['error']}" if "error" in side else "")
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    if argv and argv[0] == "--duckdb-worker":
        return _duckdb_worker(*argv[1:6])
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=3_333_333, help="≈ 15 rows each")
    parser.add_argument("--memory-limit", default="8GB")
    parser.add_argument("--files", type=int, default=16)
    parser.add_argument("--chunk-customers", type=int, default=1_000_000)
    parser.add_argument("--id-kind", choices=["int", "str"], default="int")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work-dir", type=Path, default=None, help="data, outputs, spill")
    parser.add_argument("--keep-data", action="store_true")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    result = run(
        args.customers,
        memory_limit=args.memory_limit,
        files=args.files,
        chunk_customers=args.chunk_customers,
        id_kind=args.id_kind,
        seed=args.seed,
        work_dir=args.work_dir,
        keep_data=args.keep_data,
        verbose=True,
    )
    print(format_table(result))
    print(
        f"agreement: {result['agreement']}; load {result['load_before']} → {result['load_after']}"
    )
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
