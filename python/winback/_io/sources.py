"""Where transactions come from: containers and files turned into a Polars frame.

Polars (lazy) and pandas frames, PyArrow tables and record-batch readers, DuckDB relations,
anything with ``__arrow_c_stream__``, paths, globs or directories of Parquet, CSV/TSV and
Arrow IPC files (read lazily, so only the used columns are read), and database tables or
queries by URL (:func:`read_database_url`: SQLite and PostgreSQL through their ADBC drivers,
DuckDB files through DuckDB's Arrow stream; record batches straight into Polars).

Transactions are opened with :func:`open_transactions` (docs/methods.md#input): the customer and
time columns of CSV files are read as text (ids keep their leading zeros; times follow the one
text-time rule of :mod:`winback._io.times` instead of a format Polars guesses from the data),
and the files of a directory or glob must agree on the used columns' presence and kind before
they are concatenated. :func:`to_polars` serves every other table (scored tables, targets).
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import polars as pl

from winback.errors import WinbackInputError

__all__ = [
    "database_driver_url",
    "expand_paths",
    "file_kind",
    "first_line",
    "is_database_url",
    "open_transactions",
    "read_database_url",
    "read_schema",
    "to_polars",
]

#: The attribute by which a lazy scan of files from :func:`to_polars` remembers its files, so
#: that :func:`open_transactions` can read them again as transactions (a caller may convert
#: the input with :func:`to_polars` first, to look at its columns).
_FILES_ATTR = "_winback_files"


def _is_pathlike(data: object) -> bool:
    return isinstance(data, str | os.PathLike) and not is_database_url(data)


_DATABASE_URL = re.compile(r"^(sqlite|postgresql|postgres|duckdb)(\+[A-Za-z0-9_]+)?://", re.I)
_TABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?$")


def is_database_url(data: object) -> bool:
    """Whether ``data`` is a database URL (``sqlite://``, ``postgresql://``, ``duckdb://``)."""
    return isinstance(data, str) and _DATABASE_URL.match(data) is not None


def database_driver_url(url: str) -> str:
    """``url`` with PostgreSQL's driver made explicit: a plain ``postgresql://`` (or
    ``postgres://``) URL is read with psycopg 3 (``pip install 'winback[postgres]'``), not
    SQLAlchemy's default psycopg2."""
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):
            return "postgresql+psycopg://" + url[len(plain) :]
    return url


#: Rows per Arrow batch read from SQLite (the driver's default, 1,024, makes many small
#: batches); PostgreSQL's driver sizes its batches by bytes (16 MB by default).
SQLITE_BATCH_ROWS = 65_536


def read_database_url(url: str, query: str | None = None) -> pl.DataFrame:
    """A table or query of a database as a Polars frame (docs/methods.md#input).

    ``url`` is ``sqlite:///sales.db?table=sales``, ``postgresql://user@host/db?table=sales``
    (or ``schema.sales``), or ``duckdb:///sales.duckdb?table=sales``; instead of ``table``, a
    ``query`` (``SELECT …``, as the argument or the URL's ``query=``, URL-encoded). The rows
    come as Arrow record batches, each turned into Polars as it arrives (never through pandas
    or Python objects, and never held twice): SQLite and PostgreSQL through their ADBC drivers
    (``pip install 'winback[sql]'``; PostgreSQL's binary COPY), DuckDB files through DuckDB's
    own Arrow stream (read-only). A table name is checked (letters, digits, ``_``;
    ``schema.table``) and quoted; a query is run as given, so only pass queries you trust.

    Raises
    ------
    WinbackInputError
        One line naming the source (without its password) and what to do: a URL without a
        table or query, a bad table name, a missing file, a server that cannot be reached or
        refuses the credentials, a table that does not exist, a query the database rejects.
    """
    from urllib.parse import parse_qsl, urlencode, urlsplit

    parts = urlsplit(url)
    params = parse_qsl(parts.query, keep_blank_values=True)
    table = next((v for k, v in params if k == "table"), None)
    query = query if query is not None else next((v for k, v in params if k == "query"), None)
    rest = [(k, v) for k, v in params if k not in ("table", "query")]
    # rebuilt by hand: urlunsplit drops the "//" of an empty host (sqlite:///file.db)
    head = url.split("?", 1)[0]
    base = head + ("?" + urlencode(rest) if rest else "")
    shown = re.sub(r"://[^/@]*@", "://", head)  # no user or password in messages
    if (table is None) == (query is None):
        raise WinbackInputError(
            f"the database source {shown!r} needs a table (…?table=sales) or a query "
            "(--query 'SELECT …'), one of them"
        )
    if table is not None:
        if not _TABLE_NAME.match(table):
            raise WinbackInputError(
                f"table={table!r} is not a table name (letters, digits, _; schema.table)"
            )
        query = "SELECT * FROM " + ".".join(f'"{part}"' for part in table.split("."))
    assert query is not None
    scheme = parts.scheme.lower()
    if scheme.startswith("duckdb"):
        return _read_duckdb(base, query, shown)
    if scheme.startswith("sqlite"):
        return _read_sqlite(base, query, shown)
    return _read_postgresql(base, query, shown)


def _local_path(url: str) -> str:
    """The file of ``sqlite:///x.db`` / ``duckdb:///x.duckdb`` (``x.db``; ``/abs/x.db`` for
    ``sqlite:////abs/x.db``), without the URL's parameters."""
    path = url.split("://", 1)[1].split("?", 1)[0]
    return path[1:] if path.startswith("/") else path


def _read_duckdb(url: str, query: str, shown: str) -> pl.DataFrame:
    try:
        import duckdb
    except ImportError:
        raise WinbackInputError(
            f"reading {shown!r} needs DuckDB, which is not installed: pip install duckdb"
        ) from None
    path = _local_path(url)
    if not path or not Path(path).is_file():
        raise WinbackInputError(f"the DuckDB file of {shown!r} ({path!r}) does not exist")
    try:
        with duckdb.connect(path, read_only=True) as conn:
            return _from_batches(conn.sql(query).to_arrow_reader(), shown, duckdb.Error)
    except duckdb.Error as exc:
        raise WinbackInputError(f"cannot read {shown!r}: {first_line(exc)}") from None


def _adbc(module: str, shown: str) -> Any:
    """The ADBC driver module ``adbc_driver_<module>.dbapi``, or a one-line error to install it."""
    import importlib

    try:
        return importlib.import_module(f"adbc_driver_{module}.dbapi")
    except ImportError:
        raise WinbackInputError(
            f"reading {shown!r} needs the ADBC {module} driver, which is not installed: "
            "pip install 'winback[sql]'"
        ) from None


def _read_sqlite(url: str, query: str, shown: str) -> pl.DataFrame:
    dbapi = _adbc("sqlite", shown)
    path = _local_path(url)
    if not path or not Path(path).is_file():
        raise WinbackInputError(f"the SQLite file of {shown!r} does not exist")
    from urllib.parse import quote

    # read-only: a source is never written (and a missing file is not created)
    uri = "file:" + quote(str(Path(path).resolve())) + "?mode=ro"
    return _read_adbc(
        dbapi,
        uri,
        query,
        shown,
        {"adbc.sqlite.query.batch_rows": str(SQLITE_BATCH_ROWS)},
    )


def _read_postgresql(url: str, query: str, shown: str) -> pl.DataFrame:
    dbapi = _adbc("postgresql", shown)
    # libpq's own URI: the scheme without SQLAlchemy's "+driver"; host, port, options … as given
    uri = re.sub(r"^[A-Za-z]+(\+[A-Za-z0-9_]+)?://", "postgresql://", url)
    return _read_adbc(dbapi, uri, query, shown, {})


def _read_adbc(
    dbapi: Any, uri: str, query: str, shown: str, statement_options: dict[str, str]
) -> pl.DataFrame:
    """``query`` on the ADBC connection to ``uri``, batch by batch into Polars."""
    try:
        conn = dbapi.connect(uri)
    except dbapi.Error as exc:
        raise WinbackInputError(
            f"cannot connect to {shown!r}: {_driver_reason(exc)} (check the URL, the server "
            "and the credentials)"
        ) from None
    try:
        with conn.cursor() as cursor:
            for key, value in statement_options.items():
                cursor.adbc_statement.set_options(**{key: value})
            cursor.execute(query)
            return _from_batches(cursor.fetch_record_batch(), shown, dbapi.Error)
    except dbapi.Error as exc:
        raise WinbackInputError(f"cannot read {shown!r}: {_driver_reason(exc)}") from None
    finally:
        conn.close()


def _driver_reason(exc: BaseException) -> str:
    """A driver's message on one line, without its status prefixes (``INVALID_ARGUMENT:
    [SQLite] Failed to prepare query: …``, libpq's ``ERROR:`` / ``FATAL:``)."""
    reason = first_line(exc)
    reason = re.sub(r"^[A-Z_]+: (\[[^\]]*\] )?", "", reason)
    for prefix in ("Failed to prepare query: ", "Failed to connect: "):
        reason = reason.removeprefix(prefix)
    reason = re.split(r"(?:ERROR|FATAL):\s+", reason)[-1]
    return reason.strip() or type(exc).__name__


def _numeric_type(field: Any) -> Any:
    """The Arrow type a PostgreSQL ``numeric`` column (which the ADBC driver hands over as text
    in an opaque extension type) is read as: ``decimal128(p, s)`` from the column's declared
    precision and scale, else (unconstrained, or wider than 38 digits) ``float64``."""
    import pyarrow as pa

    meta = field.metadata or {}
    try:
        typmod = int(meta.get(b"POSTGRESQL:typmod", b"-1"))
    except ValueError:
        typmod = -1
    if typmod >= 4:
        precision, scale = (typmod - 4) >> 16, (typmod - 4) & 0xFFFF
        if 0 < precision <= 38 and scale <= precision:
            return pa.decimal128(precision, scale)
    return pa.float64()


def _plain_types(schema: Any) -> dict[int, Any]:
    """The columns of a driver's schema held in extension types (PostgreSQL's ``numeric``,
    ``uuid``, ``json`` … as opaque text), by position, with the plain Arrow type to read each
    as: numbers for ``numeric`` (:func:`_numeric_type`), their text otherwise."""
    import pyarrow as pa

    plain: dict[int, Any] = {}
    for i, field in enumerate(schema):
        if isinstance(field.type, pa.BaseExtensionType):
            name = getattr(field.type, "type_name", "")
            meta = field.metadata or {}
            numeric = name == "numeric" or meta.get(b"ADBC:postgresql:typname") == b"numeric"
            plain[i] = _numeric_type(field) if numeric else field.type.storage_type
    return plain


def _plain_batch(batch: Any, plain: dict[int, Any]) -> Any:
    """``batch`` as a table whose extension columns are read as the types in ``plain``."""
    import pyarrow as pa

    if not plain:
        return pa.Table.from_batches([batch])
    columns = list(batch.columns)
    for i, target in plain.items():
        column = columns[i]
        storage = column.storage if isinstance(column, pa.ExtensionArray) else column
        columns[i] = storage.cast(target)
    return pa.Table.from_arrays(columns, names=batch.schema.names)


def _from_batches(reader: Any, shown: str, errors: Any) -> pl.DataFrame:
    """An Arrow record-batch stream as one Polars frame: each batch converted as it arrives and
    dropped (the rows are held once, in Polars), chunks kept as they came. A column Polars
    cannot hold is refused first (:func:`_unreadable_field`)."""
    import pyarrow as pa

    schema = reader.schema
    plain = _plain_types(schema)
    fields = [(f.name, plain.get(i, f.type)) for i, f in enumerate(schema)]
    problem = _unreadable_field(fields, zones=False)
    if problem is not None:
        raise WinbackInputError(f"cannot read {shown!r}: {problem}")
    empty = pa.schema([pa.field(name, dtype) for name, dtype in fields]).empty_table()
    frames = [_converted(pl.DataFrame, empty)]
    try:
        for batch in reader:
            frames.append(_converted(pl.DataFrame, _plain_batch(batch, plain)))
    except (errors, pa.ArrowException, OSError) as exc:
        # a driver's failure mid-stream (SQLite: a value of another type than the column's
        # first rows) comes as the driver's error or as Arrow's I/O error
        reason = re.sub(r"^\[[^\]]*\] ", "", _driver_reason(exc))
        if "type mismatch" in reason.lower():
            reason += (
                " (a SQLite column holds values of several types: CAST it in a query, e.g. "
                "--query 'SELECT customer_id, ts, CAST(amount AS REAL) AS amount FROM sales')"
            )
        raise WinbackInputError(f"cannot read {shown!r}: {reason}") from None
    return pl.concat(frames, how="vertical", rechunk=False)


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


def _scan_file(path: Path, text_columns: Sequence[str] = ()) -> pl.LazyFrame:
    """One file, lazily; a CSV's ``text_columns`` (those it has) are read as text, the other
    columns keep Polars' inference."""
    kind = file_kind(path)
    if kind in ("parquet", "ipc"):
        # Checked from the file's own schema first: Polars panics on some of these columns.
        problem = _unreadable_field(_file_fields(path, kind))
        if problem is not None:
            raise WinbackInputError(f"cannot read {str(path)!r}: {problem}")
    if kind == "parquet":
        return pl.scan_parquet(path)
    if kind == "csv":
        sep = "\t" if path.suffix.lower() == ".tsv" else ","
        overrides = dict.fromkeys(text_columns, pl.String)
        return pl.scan_csv(path, separator=sep, try_parse_dates=True, schema_overrides=overrides)
    if kind == "ipc":
        return pl.scan_ipc(path)
    raise WinbackInputError(
        f"cannot read {str(path)!r}: use a .parquet, .csv/.tsv or .arrow/.ipc file"
    )


def _concat(frames: list[pl.LazyFrame]) -> pl.LazyFrame:
    return frames[0] if len(frames) == 1 else pl.concat(frames, how="diagonal_relaxed")


def _scan_files(paths: list[Path]) -> pl.LazyFrame:
    frame = _concat([_scan_file(path) for path in paths])
    setattr(frame, _FILES_ATTR, tuple(paths))
    return frame


def _kind(dtype: pl.DataType, numeric: bool) -> str:
    """What a column holds, as far as reading it goes (widths and time units aside)."""
    if dtype.is_numeric():
        return "number" if numeric else ("integer" if dtype.is_integer() else "float")
    if dtype in (pl.String, pl.Categorical) or isinstance(dtype, pl.Enum | pl.Categorical):
        return "text"
    if isinstance(dtype, pl.Datetime):
        return "datetime" if dtype.time_zone is None else f"datetime in {dtype.time_zone}"
    if dtype == pl.Date:
        return "date"
    return str(dtype)


def _is_empty(frame: pl.LazyFrame) -> bool:
    return frame.head(1).collect().height == 0


def _agreeing_files(
    paths: list[Path], frames: list[pl.LazyFrame], columns: Sequence[str], numeric: Sequence[str]
) -> list[int]:
    """The files to read together: they must agree on each used column, present in all or none
    and of one kind (docs/methods.md#input); otherwise the file that differs is named. A file
    without rows that differs in kind (a header-only CSV, whose columns read as text) is
    left out."""
    schemas = []
    for path, frame in zip(paths, frames, strict=True):
        try:
            schemas.append(frame.collect_schema())
        except pl.exceptions.PolarsError as exc:
            raise WinbackInputError(f"could not read {str(path)!r}: {first_line(exc)}") from exc
    kept = list(range(len(paths)))
    for column in dict.fromkeys(columns):
        having = [i for i in kept if column in schemas[i]]
        if not having:
            continue
        if len(having) < len(kept):
            missing = next(i for i in kept if i not in having)
            raise WinbackInputError(
                f"the input files disagree: column {column!r} is in {str(paths[having[0]])!r} "
                f"but not in {str(paths[missing])!r}. Files read together need the same "
                "columns: fix that file, or read the files apart."
            )
        kinds = {i: _kind(schemas[i][column], column in numeric) for i in having}
        if len(set(kinds.values())) == 1:
            continue
        empty = {i for i in having if _is_empty(frames[i])}
        kept = [i for i in kept if i not in empty or len(empty) == len(kept)]
        having = [i for i in having if i in kept]
        first = having[0]
        for index in having[1:]:
            if kinds[index] != kinds[first]:
                raise WinbackInputError(
                    f"the input files disagree on column {column!r}: it is {kinds[index]} "
                    f"({schemas[index][column]}) in {str(paths[index])!r} but {kinds[first]} "
                    f"({schemas[first][column]}) in {str(paths[first])!r}. Files read together "
                    "need one type per column: convert that file, or read the files apart."
                )
    return kept


def open_transactions(
    data: Any,
    *,
    customer_col: str,
    time_col: str,
    columns: Sequence[str],
    numeric: Sequence[str] = (),
) -> pl.DataFrame | pl.LazyFrame:
    """Transactions as a Polars frame: :func:`to_polars`, except that files (also when ``data``
    is :func:`to_polars`' scan of them) are read with the customer and time columns of CSV
    files as text, after checking that they agree on the used ``columns`` (those in
    ``numeric``, the amounts, may mix integers and floats)."""
    frame = to_polars(data)
    paths: tuple[Path, ...] = getattr(frame, _FILES_ATTR, ())
    if not paths:
        return frame
    if len(paths) == 1 and file_kind(paths[0]) != "csv":
        return frame
    frames = [_scan_file(path, (customer_col, time_col)) for path in paths]
    if len(frames) > 1:
        kept = _agreeing_files(list(paths), frames, columns, numeric)
        frames, paths = [frames[i] for i in kept], tuple(paths[i] for i in kept)
    elif file_kind(paths[0]) == "csv" and numeric:
        frames = [_header_only_numbers(paths[0], frames[0], numeric)]
    frame = _concat(frames)
    setattr(frame, _FILES_ATTR, paths)
    return frame


def _header_only_numbers(path: Path, frame: pl.LazyFrame, numeric: Sequence[str]) -> pl.LazyFrame:
    """A header-only CSV's columns read as text; its amount columns are then numbers (there is
    no value to say otherwise), so it reads as empty transactions, like an empty table."""
    try:
        schema = frame.collect_schema()
    except pl.exceptions.PolarsError as exc:
        raise WinbackInputError(f"could not read {str(path)!r}: {first_line(exc)}") from exc
    names = [c for c in numeric if schema.get(c) == pl.String]
    if not names or not _is_empty(frame):
        return frame
    return frame.with_columns(pl.col(names).cast(pl.Float64))


def to_polars(data: Any) -> pl.DataFrame | pl.LazyFrame:
    """Any supported input as a Polars frame (lazy for files, so only used columns are read)."""
    if isinstance(data, pl.DataFrame | pl.LazyFrame):
        return data
    if is_database_url(data):
        return read_database_url(data)
    if isinstance(data, list | tuple) and data and all(is_database_url(d) for d in data):
        return _concat([read_database_url(d).lazy() for d in data]).collect()
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
        return _converted(pl.from_pandas, data)
    if module.startswith("duckdb"):
        return _converted(pl.DataFrame, data.arrow())
    if type(data).__name__ == "RecordBatchReader" and hasattr(data, "read_all"):
        return _converted(pl.DataFrame, data.read_all())
    if hasattr(data, "__arrow_c_stream__") or hasattr(data, "__arrow_c_array__"):
        return _converted(pl.DataFrame, data)
    raise WinbackInputError(
        f"unsupported input of type {type(data).__name__}: pass a Polars/pandas DataFrame, a "
        "PyArrow "
        "table or record-batch reader, a DuckDB relation, or a path/glob of Parquet/CSV/IPC files"
    )


def _converted(convert: Any, data: Any) -> pl.DataFrame:
    """``convert(data)`` (a container to Polars), its failures as a :class:`WinbackInputError`
    naming the column that Polars cannot hold (docs/methods.md#input): a fixed-offset time
    zone such as ``+05:30``, 256-bit decimals … Polars signals some of them with a Rust panic,
    which is not an ``Exception``."""
    problem = _unreadable_field(_fields(data), zones=False)
    if problem is not None:
        # Checked before converting: Polars panics on some of these (and prints the panic).
        raise WinbackInputError(problem)
    try:
        frame: pl.DataFrame = convert(data)
    except (KeyboardInterrupt, SystemExit, MemoryError):
        raise
    except BaseException as exc:
        raise WinbackInputError(_conversion_problem(data, exc)) from None
    return frame


_WHOLE_HOURS = re.compile(r"^[+-](0[0-9]|1[0-4]):00$")


def _unreadable_field(fields: Sequence[tuple[str, Any]], zones: bool = True) -> str | None:
    """What makes one of ``fields`` (name, Arrow or pandas type) unreadable by Polars: a 256-bit
    decimal, or (with ``zones``) a time zone that is neither an IANA name nor a whole-hour
    offset; else None."""
    for name, dtype in fields:
        zone = getattr(dtype, "tz", None) if zones else None
        if zone is not None and not _known_zone(str(zone)):
            return (
                f"column {name!r} has the time zone {str(zone)!r}, which cannot be read (named "
                "IANA zones and whole-hour offsets can); convert the column to a named zone "
                "(e.g. 'Asia/Kolkata') or to UTC first"
            )
        if str(dtype).startswith("decimal256"):
            return (
                f"column {name!r} has type {dtype}, which cannot be read; convert it to float64 "
                "or decimal128 first"
            )
    return None


def _file_fields(path: Path, kind: str) -> list[tuple[str, Any]]:
    """The Arrow fields of a Parquet or IPC file, from its footer; none if it cannot be read
    (scanning it then gives the error)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        if kind == "parquet":
            schema = pq.read_schema(path)
        else:
            with pa.memory_map(str(path)) as source:
                schema = pa.ipc.open_file(source).schema
    except (OSError, pa.ArrowException):
        return []
    return list(zip(schema.names, schema.types, strict=True))


def _conversion_problem(data: Any, exc: BaseException) -> str:
    """Which column of ``data`` Polars could not convert, and what to do."""
    reason = first_line(exc)
    problem = _unreadable_field(_fields(data))
    if problem is not None:
        return problem
    return (
        f"could not read the input: {reason}. Check the column types (ids: int64 integers or "
        "strings; times: dates, datetimes or ISO text; amounts: numbers)"
    )


def _known_zone(zone: str) -> bool:
    """An IANA zone name, or a whole-hour offset (which Polars reads as ``Etc/GMT±N``)."""
    from zoneinfo import ZoneInfo

    if _WHOLE_HOURS.match(zone):
        return True

    try:
        ZoneInfo(zone)
    except (ValueError, OSError, LookupError):
        return False
    return True


def _fields(data: Any) -> list[tuple[str, Any]]:
    """The (name, Arrow or pandas type) pairs of a container, as far as they can be seen."""
    schema = getattr(data, "schema", None)
    if schema is not None and hasattr(schema, "names") and hasattr(schema, "types"):
        return list(zip(schema.names, schema.types, strict=False))
    dtypes = getattr(data, "dtypes", None)
    if dtypes is not None and hasattr(dtypes, "items"):
        return [(str(name), dtype) for name, dtype in dtypes.items()]
    return []


def read_schema(frame: pl.DataFrame | pl.LazyFrame) -> pl.Schema:
    """The input's schema; an unreadable input is a :class:`WinbackInputError`."""
    try:
        return frame.collect_schema()
    except pl.exceptions.PolarsError as exc:
        paths: tuple[Path, ...] = getattr(frame, _FILES_ATTR, ())
        where = ", ".join(repr(str(p)) for p in paths[:3]) + (", …" if len(paths) > 3 else "")
        source = f"the input {where}" if paths else "the input"
        raise WinbackInputError(f"could not read {source}: {first_line(exc)}") from exc


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
