"""Where transactions come from: containers and files turned into a Polars frame.

Polars (lazy) and pandas frames, PyArrow tables and record-batch readers, DuckDB relations,
anything with ``__arrow_c_stream__``, and paths, globs or directories of Parquet, CSV/TSV and
Arrow IPC files (read lazily, so only the used columns are read).
"""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import polars as pl

from winback.errors import WinbackInputError

__all__ = ["expand_paths", "file_kind", "first_line", "read_schema", "to_polars"]


def _is_pathlike(data: object) -> bool:
    return isinstance(data, str | os.PathLike)


def expand_paths(data: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> list[Path]:
    items: list[Any] = [data] if _is_pathlike(data) else list(data)  # type: ignore[arg-type]
    paths: list[Path] = []
    for item in items:
        text = os.fspath(item)
        if any(ch in text for ch in "*?["):
            matches = sorted(glob.glob(text, recursive=True))
            if not matches:
                raise WinbackInputError(f"no file matches the pattern {text!r}")
            paths.extend(Path(m) for m in matches)
        else:
            path = Path(text)
            if not path.exists():
                raise WinbackInputError(f"input file {text!r} does not exist")
            if path.is_dir():
                found = sorted(p for p in path.rglob("*") if p.is_file() and file_kind(p))
                if not found:
                    raise WinbackInputError(f"directory {text!r} holds no Parquet/CSV/IPC files")
                paths.extend(found)
            else:
                paths.append(path)
    return paths


def file_kind(path: Path) -> str | None:
    suffixes = [s.lower() for s in path.suffixes]
    for kind, names in (
        ("parquet", {".parquet", ".pq"}),
        ("csv", {".csv", ".tsv", ".txt"}),
        ("ipc", {".arrow", ".ipc", ".feather"}),
    ):
        if names.intersection(suffixes):
            return kind
    return None


def _scan_files(paths: list[Path]) -> pl.LazyFrame:
    frames = []
    for path in paths:
        kind = file_kind(path)
        if kind == "parquet":
            frames.append(pl.scan_parquet(path))
        elif kind == "csv":
            sep = "\t" if path.suffix.lower() == ".tsv" else ","
            frames.append(pl.scan_csv(path, separator=sep, try_parse_dates=True))
        elif kind == "ipc":
            frames.append(pl.scan_ipc(path))
        else:
            raise WinbackInputError(
                f"cannot read {str(path)!r}: use a .parquet, .csv/.tsv or .arrow/.ipc file"
            )
    return frames[0] if len(frames) == 1 else pl.concat(frames, how="diagonal_relaxed")


def to_polars(data: Any) -> pl.DataFrame | pl.LazyFrame:
    """Any supported input as a Polars frame (lazy for files, so only used columns are read)."""
    if isinstance(data, pl.DataFrame | pl.LazyFrame):
        return data
    if _is_pathlike(data) or (
        isinstance(data, list | tuple) and data and all(_is_pathlike(d) for d in data)
    ):
        return _scan_files(expand_paths(data))
    module = type(data).__module__
    if module.startswith("pyspark"):
        raise WinbackInputError(
            "a PySpark DataFrame would be pulled whole to the driver; use the Spark path "
            "(winback.spark) to score it on the cluster, or convert a sample with .toArrow() first"
        )
    if module.startswith("pandas"):
        return pl.from_pandas(data)
    if module.startswith("duckdb"):
        return pl.DataFrame(data.arrow())
    if type(data).__name__ == "RecordBatchReader" and hasattr(data, "read_all"):
        return pl.DataFrame(data.read_all())
    if hasattr(data, "__arrow_c_stream__") or hasattr(data, "__arrow_c_array__"):
        return pl.DataFrame(data)
    raise WinbackInputError(
        f"unsupported input of type {type(data).__name__}: pass a Polars/pandas DataFrame, a "
        "PyArrow "
        "table or record-batch reader, a DuckDB relation, or a path/glob of Parquet/CSV/IPC files"
    )


def read_schema(frame: pl.DataFrame | pl.LazyFrame) -> pl.Schema:
    """The input's schema; an unreadable input is a :class:`WinbackInputError`."""
    try:
        return frame.collect_schema()
    except pl.exceptions.PolarsError as exc:
        raise WinbackInputError(f"could not read the input: {first_line(exc)}") from exc


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
