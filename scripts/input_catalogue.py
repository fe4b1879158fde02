"""The catalogue of hostile inputs (issue 19): what each does on the command line.

One list, :data:`CASES`, serves twice: ``tests/cli/test_hostile_cli.py`` writes each input to a
temporary directory and runs every command of :data:`COMMANDS` on it as a subprocess (a bad
input exits 2 with one line on stderr and no traceback; a good-but-odd one exits 0), and this
script renders it as ``docs/input-catalogue.md``::

    python scripts/input_catalogue.py            # rewrite docs/input-catalogue.md
    python scripts/input_catalogue.py --check    # exit 1 if the committed file is stale

(``tests/cli/test_hostile_cli.py`` checks that the committed file equals the rendered one.)
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

__all__ = ["CASES", "COMMANDS", "DOC", "Case", "render"]

DOC = Path(__file__).resolve().parents[1] / "docs" / "input-catalogue.md"

#: The commands run on every input: name → arguments after the input (``{out}`` is a fresh
#: output directory). ``report`` leaves the models out (the ``fit`` row covers them).
COMMANDS: dict[str, list[str]] = {
    "score": ["-o", "{out}/scores.csv"],
    "fit": ["-o", "{out}/models"],
    "value": ["-o", "{out}/value.parquet"],
    "campaign": ["--campaign-id", "c1", "-o", "{out}/targets.csv"],
    "report": ["--no-models", "-o", "{out}/report.html"],
}

#: Slow commands run on every bad input but only on these good ones (an HTML report takes
#: seconds even on a small input).
SLOW = {"report": {"ids with leading zeros", "tz-aware ns times (Parquet)"}}

HEADER = "customer_id,ts,amount\n"


def _rows(count: int = 1_000) -> list[tuple[str, date, float]]:
    """A plain log every command can work with, the base the odd inputs are made from: the
    first ``count`` rows of the bundled CDNOW sample (real purchases, so the models fit)."""
    from winback.datasets import load_cdnow

    sample = load_cdnow().head(count)
    return [
        (str(c), d, float(a))
        for c, d, a in sample.select("customer_id", "ts", "amount").iter_rows()
    ]


def _csv(lines: list[str], header: str = HEADER) -> Callable[[Path], Path]:
    def write(where: Path) -> Path:
        path = where / "tx.csv"
        path.write_text(header + "".join(line + "\n" for line in lines))
        return path

    return write


def _good_csv(transform: Callable[[str, date, float], str]) -> Callable[[Path], Path]:
    return _csv([transform(c, d, a) for c, d, a in _rows()])


def _parquet(columns: Callable[[], dict[str, pa.Array]]) -> Callable[[Path], Path]:
    def write(where: Path) -> Path:
        path = where / "tx.parquet"
        pq.write_table(pa.table(columns()), path)
        return path

    return write


def _base_columns() -> dict[str, list[object]]:
    rows = _rows()
    return {
        "customer_id": [int(c) for c, _, _ in rows],
        "ts": [datetime.combine(d, datetime.min.time()) for _, d, _ in rows],
        "amount": [a for _, _, a in rows],
    }


def _typed(**types: Callable[[list[object]], pa.Array]) -> Callable[[Path], Path]:
    def columns() -> dict[str, pa.Array]:
        base = _base_columns()
        return {
            name: types[name](values) if name in types else pa.array(values)
            for name, values in base.items()
        }

    return _parquet(columns)


def _directory(*parts: tuple[str, str]) -> Callable[[Path], Path]:
    """A directory of CSV files (name, text)."""

    def write(where: Path) -> Path:
        folder = where / "parts"
        folder.mkdir()
        for name, text in parts:
            (folder / name).write_text(text)
        return folder

    return write


def _mixed_directory(where: Path) -> Path:
    folder = where / "parts"
    folder.mkdir()
    base = _base_columns()
    pq.write_table(pa.table({k: pa.array(v) for k, v in base.items()}), folder / "a.parquet")
    text = {**base, "ts": [t.isoformat() for t in base["ts"]]}  # type: ignore[attr-defined]
    pq.write_table(pa.table({k: pa.array(v) for k, v in text.items()}), folder / "b.parquet")
    return folder


def _bytes(data: bytes, name: str = "tx.csv") -> Callable[[Path], Path]:
    def write(where: Path) -> Path:
        path = where / name
        path.write_bytes(data)
        return path

    return write


@dataclass(frozen=True)
class Case:
    """One input of the catalogue.

    ``error`` is the error type a bad input raises (every command exits 2 with one line
    naming ``needle``); None for a good-but-odd input (every command exits 0). ``args`` are
    extra flags given to every command; ``gist`` is the behaviour in a few words. ``commands``
    overrides the outcome of some commands (command → (exit code, needle)); ``xfail`` names
    commands whose expected outcome is not met yet (command → the reason, naming the file):
    the test expects them to fail, strictly.
    """

    name: str
    category: str
    write: Callable[[Path], Path] = field(repr=False)
    gist: str
    error: str | None = None
    needle: str = ""
    args: tuple[str, ...] = ()
    commands: dict[str, tuple[int, str]] = field(default_factory=dict)
    xfail: dict[str, str] = field(default_factory=dict)

    def runs(self, command: str) -> bool:
        """Whether the catalogue runs ``command`` on this input (see :data:`SLOW`)."""
        return self.error is not None or self.name in SLOW.get(command, {self.name})

    def expected(self, command: str) -> tuple[int, str]:
        """The exit code and the needle of the error line (empty for exit 0) of ``command``."""
        if command in self.commands:
            return self.commands[command]
        return (2, self.needle) if self.error else (0, "")


_GOOD = _rows()
_ISO = [f"{c},{d.isoformat()},{a}" for c, d, a in _GOOD]

CASES: list[Case] = [
    # -- files that are not transactions --------------------------------------------------------
    Case(
        "empty file",
        "files",
        _bytes(b""),
        "refused: the file has no header",
        "WinbackInputError",
        "tx.csv",
    ),
    Case(
        "header-only CSV",
        "files",
        _csv([]),
        "empty transactions: score and value write empty tables; report refuses (nothing to "
        "report); campaign asks for --start; fit should refuse it as input (exit 2)",
        "WinbackInputError",
        "no transactions",
        commands={
            "score": (0, ""),
            "value": (0, ""),
            "campaign": (2, "--start"),
            "fit": (2, "no customers"),
        },
    ),
    Case(
        "not UTF-8",
        "files",
        _bytes(HEADER.encode() + "\xe9,2024-01-01,5\n\xe9,2024-01-03,5\n".encode("latin-1")),
        "refused: the columns that cannot be read",
        "WinbackInputError",
        "invalid utf-8",
    ),
    Case(
        "unknown suffix",
        "files",
        _bytes(HEADER.encode(), "tx.json"),
        "refused: not Parquet, CSV or IPC",
        "WinbackInputError",
        "tx.json",
    ),
    Case(
        "ragged CSV rows",
        "files",
        _csv([*_ISO[:5], "1,2024-01-01,5,extra,fields"]),
        "refused: the columns that cannot be read",
        "WinbackInputError",
        "more fields",
    ),
    Case(
        "directory, files disagree on a type",
        "files",
        _mixed_directory,
        "refused: the file whose column type differs is named",
        "WinbackInputError",
        "b.parquet",
    ),
    Case(
        "directory, a file lacks a column",
        "files",
        _directory(
            ("a.csv", HEADER + "\n".join(_ISO) + "\n"), ("b.csv", "customer_id,ts\n1,2024-01-01\n")
        ),
        "refused: the file without the column is named",
        "WinbackInputError",
        "b.csv",
    ),
    # -- columns --------------------------------------------------------------------------------
    Case(
        "no customer column",
        "columns",
        _csv(["2024-01-01,5"], "ts,amount\n"),
        "refused: the missing column and the flag to name it",
        "WinbackInputError",
        "--customer-col",
    ),
    Case(
        "no time column",
        "columns",
        _csv(["1,5"], "customer_id,amount\n"),
        "refused: the missing column and the flag to name it",
        "WinbackInputError",
        "--time-col",
    ),
    Case(
        "text amounts",
        "columns",
        _csv(["1,2024-01-01,five", "1,2024-02-01,6"]),
        "refused: the amount column is not numeric",
        "WinbackInputError",
        "'amount'",
    ),
    Case(
        "binary ids (Parquet)",
        "types",
        _typed(customer_id=lambda v: pa.array([str(x).encode() for x in v], pa.binary())),
        "refused: ids must be integers or text",
        "WinbackInputError",
        "'customer_id'",
    ),
    Case(
        "decimal ids (Parquet)",
        "types",
        _typed(customer_id=lambda v: pa.array([Decimal(x) for x in v], pa.decimal128(20, 0))),  # type: ignore[arg-type]
        "refused: ids must be integers or text",
        "WinbackInputError",
        "'customer_id'",
    ),
    Case(
        "uint64 ids beyond Int64 (Parquet)",
        "types",
        _typed(customer_id=lambda v: pa.array([2**63 + int(x) for x in v], pa.uint64())),  # type: ignore[call-overload]
        "refused unless --id-type str",
        "WinbackInputError",
        "--id-type str",
    ),
    Case(
        "integer times (Parquet)",
        "types",
        _typed(ts=lambda v: pa.array(list(range(len(v))), pa.int64())),
        "refused: integers are ambiguous times",
        "WinbackInputError",
        "'ts'",
    ),
    Case(
        "time-of-day column (Parquet)",
        "types",
        _typed(ts=lambda v: pa.array([x.time() for x in v], pa.time64("us"))),  # type: ignore[attr-defined]
        "refused: a time of day is not a date",
        "WinbackInputError",
        "'ts'",
    ),
    Case(
        "decimal256 amounts (Parquet)",
        "types",
        _typed(amount=lambda v: pa.array([Decimal(str(x)) for x in v], pa.decimal256(40, 2))),
        "refused: the column Polars cannot hold is named",
        "WinbackInputError",
        "'amount'",
    ),
    Case(
        "fixed-offset zone +05:30 (Parquet)",
        "types",
        _typed(ts=lambda v: pa.array(v, pa.timestamp("us", tz="+05:30"))),
        "refused: the file and the column named, convert to a named zone",
        "WinbackInputError",
        "column 'ts' has the time zone '+05:30'",
    ),
    # -- rows -----------------------------------------------------------------------------------
    Case(
        "null customer id",
        "rows",
        _csv([*_ISO, ",2024-01-01,5"]),
        "refused under --on-invalid raise: column, count and rows named",
        "WinbackInputError",
        "--on-invalid drop",
    ),
    Case(
        "null time",
        "rows",
        _csv([*_ISO, "1,,5"]),
        "refused under --on-invalid raise: column, count and rows named",
        "WinbackInputError",
        "null timestamp",
    ),
    Case(
        "NaN amount",
        "rows",
        _csv([*_ISO, "1,2024-01-01,NaN"]),
        "refused under --on-invalid raise: NaN or infinite amount",
        "WinbackInputError",
        "NaN or infinite amount",
    ),
    Case(
        "infinite amount",
        "rows",
        _csv([*_ISO, "1,2024-01-01,inf"]),
        "refused under --on-invalid raise: NaN or infinite amount",
        "WinbackInputError",
        "NaN or infinite amount",
    ),
    Case(
        "unparseable time",
        "rows",
        _csv([*_ISO, "1,yesterday,5"]),
        "refused under --on-invalid raise: the value and the ISO rule",
        "WinbackInputError",
        "'yesterday'",
    ),
    Case(
        "ambiguous dates 01/02/2024",
        "rows",
        _csv([f"{c},{d:%m/%d/%Y},{a}" for c, d, a in _GOOD]),
        "refused whatever --on-invalid: both readings and --time-format",
        "WinbackInputError",
        "--time-format",
    ),
    Case(
        "amounts summing past float64",
        "rows",
        _csv([*_ISO, "99999999,2024-01-01,1e308", "99999999,2024-02-01,1e308"]),
        "refused: the customer whose total overflows is named",
        "WinbackInputError",
        "99999999",
    ),
    # -- good but odd: exit 0 ----------------------------------------------------------------
    Case(
        "bad rows with --on-invalid drop",
        "good but odd",
        _csv([*_ISO, ",2024-01-01,5", "1,,5", "1,2024-01-01,NaN", "1,yesterday,5"]),
        "read: the 4 bad rows set aside and counted",
        args=("--on-invalid", "drop"),
    ),
    Case(
        "ids with leading zeros",
        "good but odd",
        _good_csv(lambda c, d, a: f"00{c},{d},{a}"),
        "read: ids kept as text (00123 ≠ 123)",
    ),
    Case(
        "ids beyond 2^63 in a CSV",
        "good but odd",
        _good_csv(lambda c, d, a: f"{2**64 + int(c)},{d},{a}"),
        "read: ids as text",
    ),
    Case(
        "formula-like ids",
        "good but odd",
        _good_csv(lambda c, d, a: f"=cmd{c},{d},{a}"),
        "read; CSV outputs guarded with a leading '",
    ),
    Case(
        "ISO times with Z and offsets",
        "good but odd",
        _good_csv(lambda c, d, a: f"{c},{d}T10:00:00{'Z' if int(c) % 2 else '+05:30'},{a}"),
        "read: offsets are instants, read on UTC's calendar",
    ),
    Case(
        "US dates with --time-format",
        "good but odd",
        _good_csv(lambda c, d, a: f"{c},{d:%m/%d/%Y},{a}"),
        "read with the given layout",
        args=("--time-format", "%m/%d/%Y"),
    ),
    Case(
        "dates before 1970",
        "good but odd",
        _good_csv(lambda c, d, a: f"{c},{d.replace(year=d.year - 60)},{a}"),
        "read: negative epoch times work",
    ),
    Case(
        "duplicate rows", "good but odd", _csv(_ISO + _ISO), "read: same-day rows are one occasion"
    ),
    Case(
        "refunds (negative amounts)",
        "good but odd",
        _good_csv(lambda c, d, a: f"{c},{d},{-a if int(c) % 7 == 0 else a}"),
        "read: negative amounts are refunds",
    ),
    Case(
        "CRLF line ends and spaces",
        "good but odd",
        _bytes((HEADER + "".join(f"{c}, {d} ,{a}\r\n" for c, d, a in _GOOD)).encode()),
        "read: spaces around times ignored",
    ),
    Case(
        "tz-aware ns times (Parquet)",
        "good but odd",
        _typed(ts=lambda v: pa.array(v, pa.timestamp("ns", tz="America/New_York"))),
        "read on the zone's calendar",
    ),
    Case(
        "date32 times, uint64 ids, decimal amounts (Parquet)",
        "good but odd",
        _typed(
            ts=lambda v: pa.array([x.date() for x in v], pa.date32()),  # type: ignore[attr-defined]
            customer_id=lambda v: pa.array(v, pa.uint64()),
            amount=lambda v: pa.array([Decimal(str(x)) for x in v], pa.decimal128(12, 2)),
        ),
        "read",
    ),
    Case(
        "categorical ids (Parquet)",
        "good but odd",
        _typed(customer_id=lambda v: pa.array([str(x) for x in v]).dictionary_encode()),
        "read as text ids",
    ),
]


def render() -> str:
    """The catalogue as Markdown (docs/input-catalogue.md)."""
    lines = [
        "# Input catalogue",
        "",
        "<!-- Generated by scripts/input_catalogue.py from the catalogue that",
        "tests/cli/test_hostile_cli.py runs; do not edit by hand. -->",
        "",
        "What winback does with hostile input (issue 19). Every input below is run through "
        f"`winback {' / '.join(COMMANDS)}` as a subprocess by `tests/cli/test_hostile_cli.py`: "
        "a bad input exits 2 with one line on stderr (`error: …`, naming the column, file or "
        "rows, never a traceback); a good-but-odd input exits 0. The Python API raises the "
        "error type shown (from `winback.errors`). Random inputs of the same kinds are tried "
        "by `tests/io/test_hostile.py` (hypothesis). `report` runs on every bad input but on "
        f"only {len(SLOW['report'])} of the good ones (it is slow). See docs/methods.md#input.",
        "",
    ]
    for category in dict.fromkeys(case.category for case in CASES):
        lines += [
            f"## {category.capitalize()}",
            "",
            "| input | flags | outcome | behaviour |",
            "|---|---|---|---|",
        ]
        for case in CASES:
            if case.category != category:
                continue
            flags = " ".join(case.args).replace("|", "\\|")
            outcome = f"exit 2, `{case.error}`" if case.error else "exit 0"
            others = [
                f"{c}: exit {code}"
                for c, (code, _) in case.commands.items()
                if (code, _) != ((2, case.needle) if case.error else (0, ""))
            ]
            if others:
                outcome += f" ({'; '.join(others)})"
            flags_cell = f"`{flags}`" if flags else ""
            gist = case.gist + "".join(
                f" — known gap, `{c}`: {reason}" for c, reason in case.xfail.items()
            )
            lines.append(f"| {case.name} | {flags_cell} | {outcome} | {gist} |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if not DOC.exists() or DOC.read_text() != text:
            print(f"{DOC} is stale: run python scripts/input_catalogue.py", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(text)
    print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
