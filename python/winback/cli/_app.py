"""The Typer app, its global options (--debug, --quiet, --mkdir, --no-csv-guard), and ``main``:
the entry point that maps errors to one-line messages and exit codes, with the library's
``name='value'`` advice translated to the command's flags (``cli_advice``).

Exit codes: 0 success, 2 bad input or arguments, 3 a model could not be fitted, 1 anything else.
"""

from __future__ import annotations

import atexit
import gc
import os
import re
import sys
from typing import Annotated, Any

import typer
import typer.core
from rich.markup import escape

from winback.cli._common import console, state
from winback.errors import WinbackConfigError, WinbackError, WinbackFitError, WinbackInputError

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_FIT_FAILURE",
    "GLOBAL_FLAGS",
    "ONE_SHOT_BLAS_TIMEOUT",
    "ONE_SHOT_GC_YOUNG",
    "app",
    "cli_advice",
    "main",
    "one_shot_process",
]

app = typer.Typer(
    name="winback",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

EXIT_BAD_INPUT = 2
EXIT_FIT_FAILURE = 3

#: Options of the ``winback`` group that are also accepted after the command name.
GLOBAL_FLAGS = ("--quiet", "-q", "--debug", "--mkdir", "--no-csv-guard")

#: Library keywords whose flag has another name (``num_threads=`` is ``--threads``).
_KEYWORD_FLAGS = {"num_threads": "threads", "rule": "rules", "models": "model"}
#: ``name='value'``, ``name="value"``, ``name=value`` or a bare ``name=`` in a library message.
_KEYWORD = re.compile(
    r"""\b([a-z][a-z0-9_]*)=(?:'([^']*)'|"([^"]*)"|([A-Za-z0-9_.:%/+-]+)|(?=[\s,;)]|$))"""
)
#: A Python call wrapped around a keyword hint: ``winback.prepare(..., amount_col='...')``.
_CALL = re.compile(r"winback\.[a-z_.]+\(\.\.\., ([a-z_]+=[^)]*)\)")
_SIMPLE_VALUE = re.compile(r"[A-Za-z0-9_.:%/+-]+")


@app.callback()
def _global_options(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors.")] = False,
    mkdir: Annotated[
        bool, typer.Option("--mkdir", help="Create missing parent directories of outputs.")
    ] = False,
    no_csv_guard: Annotated[
        bool,
        typer.Option(
            "--no-csv-guard",
            help="Write CSV text cells as they are (by default a cell starting with = + - @, a "
            "tab or a carriage return gets a leading ' so a spreadsheet does not run it).",
        ),
    ] = False,
) -> None:
    """Find customers going silent, say how silent they are, and win them back.

    Examples:

      winback demo

      winback report sales.parquet -o report.html --as-of 2024-06-30

      winback score sales.parquet --as-of 2024-06-30 -o scores.parquet

      winback migrate sales.parquet --as-of 2024-03-31 --as-of 2024-06-30 -o migration/

      winback fit sales.parquet -m bgnbd -m gg -o models/

      winback init winback.toml; winback run --config winback.toml --as-of 2024-06-30

    Exit codes: 0 success, 2 bad input or arguments, 3 a model could not be fitted, 1 other.

    Errors print one line; winback --debug COMMAND … shows the traceback.

    --json (on each command) prints a JSON summary on stdout; --quiet prints only errors.

    Outputs are checked before the work: an output equal to an input, a missing parent
    directory (pass --mkdir to create it) or a path that cannot be written stops the run.

    CSV outputs are guarded against formula injection: a text cell starting with = + - @, a
    tab or a carriage return is written with a leading ' (--no-csv-guard turns this off;
    Parquet is written as it is). See docs/methods.md#outputs.

    --debug, --quiet, --mkdir and --no-csv-guard may also follow the command name.
    """
    state["debug"] = debug
    state["quiet"] = quiet
    state["mkdir"] = mkdir
    state["csv_guard"] = not no_csv_guard


#: Python's collection threshold for the youngest generation in a one-shot command (default 700).
ONE_SHOT_GC_YOUNG = 50_000
#: OpenBLAS's idle worker threads spin 2**n CPU cycles before they sleep (its default n is 28,
#: ≈ 0.1 s); 4, the least it takes, lets them sleep at once in a one-shot command.
ONE_SHOT_BLAS_TIMEOUT = "4"
_tuned = False


def one_shot_process(command: str | None) -> None:
    """Garbage collection and OpenBLAS's idle threads set for a one-shot command (every command
    but ``serve``, which keeps Python's and OpenBLAS's defaults). Idempotent.

    - A command imports NumPy, Polars, SciPy, Numba … (≈ 170,000 objects) and ends: with
      Python's default thresholds the collector ran ≈ 400 times during ``winback report`` on
      CDNOW, several times over every object, and once more over everything at exit (≈ 0.5 s of
      CPU of ≈ 2.4). Here the youngest generation is collected every 50,000 new objects instead
      of 700 (cycles are still collected; at most that many wait), and at exit the objects are
      frozen (``gc.freeze``), so the interpreter's last collection does not walk them: the
      process ends and the operating system frees its memory anyway. Objects outside reference
      cycles are freed at exit as before; the commands close their outputs themselves.
    - After each threaded BLAS call (a long NumPy dot product, LAPACK or SuperLU in SciPy)
      OpenBLAS's workers spun ≈ 0.1 s each before sleeping: ≈ 0.3 s of CPU in ``winback
      report`` on CDNOW. ``OPENBLAS_THREAD_TIMEOUT`` (unless set) lets them sleep at once. It is
      read when NumPy and SciPy load OpenBLAS, which the command does after this. The thread
      counts and how the work is split are unchanged: the same bits.
    """
    global _tuned
    if command == "serve" or _tuned:
        return
    _tuned = True
    os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", ONE_SHOT_BLAS_TIMEOUT)
    _, middle, old = gc.get_threshold()
    gc.set_threshold(ONE_SHOT_GC_YOUNG, middle, old)
    atexit.register(gc.freeze)


def main() -> None:
    """Entry point: runs the app and turns winback errors into one-line messages and exit codes."""
    args = _hoist_global_flags(sys.argv[1:])
    command = next((a for a in args if not a.startswith("-")), None)
    one_shot_process(command)
    try:
        code = app(args=args, prog_name="winback", standalone_mode=False)
        # Without standalone mode, typer returns an exit code instead of exiting: an interrupt
        # (Ctrl-C) comes back as 130 and must not end the process with 0.
        if isinstance(code, int) and not isinstance(code, bool) and code != 0:
            if code == 130:
                console.print("aborted")
            sys.exit(code)
    except (WinbackInputError, WinbackConfigError) as exc:
        _fail(exc, EXIT_BAD_INPUT, command)
    except WinbackFitError as exc:
        _fail(exc, EXIT_FIT_FAILURE, command)
    except WinbackError as exc:
        _fail(exc, 1, command)
    except (typer.Abort, KeyboardInterrupt):
        console.print("aborted")
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except RecursionError as exc:
        _fail(exc, EXIT_BAD_INPUT, message=f"the input is nested too deeply to read ({exc})")
    except OverflowError as exc:
        _fail(exc, EXIT_BAD_INPUT, message=f"a number is too large ({exc}); give a smaller one")
    except UnicodeDecodeError as exc:
        _fail(
            exc,
            EXIT_BAD_INPUT,
            message=f"a file is not UTF-8 text (byte {exc.start}: {exc.reason}); save it as UTF-8",
        )
    except OSError as exc:
        where = f" {exc.filename!r}" if exc.filename else ""
        _fail(exc, EXIT_BAD_INPUT, message=f"cannot use{where}: {exc.strerror or exc}")
    except Exception as exc:
        if _is_data_error(exc):
            _fail(exc, EXIT_BAD_INPUT, message=f"the input cannot be read: {_first_line(exc)}")
        # Usage errors of the click that typer vendors: one line and exit code 2.
        exit_code = getattr(exc, "exit_code", None)
        if isinstance(exc, typer.exceptions.TyperException) and isinstance(exit_code, int):
            if type(exc).__name__ == "NoArgsIsHelpError" or not hasattr(exc, "format_message"):
                exc.show()  # type: ignore[attr-defined]
                sys.exit(exit_code)
            if state["debug"]:
                console.print_exception()
            else:
                context = getattr(exc, "ctx", None)
                where = getattr(context, "command_path", "winback")
                console.print(
                    f"[red]error:[/] {exc.format_message()} (see: {where} --help)",
                    highlight=False,
                    soft_wrap=True,
                )
            sys.exit(exit_code)
        _fail(exc, 1)


def _hoist_global_flags(args: list[str]) -> list[str]:
    """Moves --quiet/-q/--debug given after the command (winback score … --quiet) to the front,
    where the group reads them."""
    end = args.index("--") if "--" in args else len(args)
    flags = [a for a in args[:end] if a in GLOBAL_FLAGS]
    rest = [a for a in args[:end] if a not in GLOBAL_FLAGS]
    return flags + rest + args[end:]


def _is_data_error(exc: BaseException) -> bool:
    """An Arrow or Polars error that escaped the library: bad data (mixed types, an unknown
    time zone …), not a bug of winback."""
    module = type(exc).__module__ or ""
    return module.startswith(("pyarrow", "polars"))


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def _fail(
    exc: BaseException, code: int, command: str | None = None, *, message: str | None = None
) -> None:
    if state["debug"]:
        console.print_exception()
    else:
        text = message if message is not None else cli_advice(str(exc), command)
        text = escape(" ".join(text.split()))  # one line, always; brackets are not markup
        console.print(f"[red]error:[/] {text}", highlight=False, soft_wrap=True)
    sys.exit(code)


def _command_flags(command: str | None) -> dict[str, str]:
    """The command's options as ``python name → --flag`` (hidden aliases left out)."""
    if command is None:
        return {}
    group: Any = typer.main.get_command(app)
    click_command = getattr(group, "commands", {}).get(command)
    if click_command is None:
        return {}
    flags: dict[str, str] = {}
    for param in click_command.params:
        long = [o for o in getattr(param, "opts", []) if o.startswith("--")]
        if param.name and long and not getattr(param, "hidden", False):
            flags[param.name] = long[0]
    return flags


def cli_advice(message: str, command: str | None) -> str:
    """A library message with its Python keyword advice as the command's flags:
    ``pass on_invalid='drop'`` → ``pass --on-invalid drop``, ``amount_col='...'`` →
    ``--amount-col ...``, ``spill_dir= (CLI: --spill-dir)`` → ``--spill-dir``. Keywords the
    command has no flag for are left as they are."""
    if "=" not in message:
        return message
    flags = _command_flags(command)

    def flag_of(name: str) -> str | None:
        return flags.get(name) or flags.get(_KEYWORD_FLAGS.get(name, ""))

    def keyword(match: re.Match[str]) -> str:
        flag = flag_of(match.group(1))
        if flag is None:
            return match.group(0)
        quoted = match.group(2) if match.group(2) is not None else match.group(3)
        value = quoted if quoted is not None else match.group(4)
        if value is None:
            return flag
        if value and _SIMPLE_VALUE.fullmatch(value):
            return f"{flag} {value}"
        return f"{flag} {value!r}"

    def call(match: re.Match[str]) -> str:
        inner = match.group(1)
        translated = _KEYWORD.sub(keyword, inner)
        return translated if translated != inner else match.group(0)

    text = _CALL.sub(call, message)
    text = _KEYWORD.sub(keyword, text)
    # The library's own "(CLI: --flag)" notes are redundant once the advice is a flag.
    return re.sub(r"\s*\(CLI: [^)]*\)", "", text)


def _flag_type_rich(self: Any, ctx: Any) -> str | None:
    """No ``<bool>`` after a boolean flag in the help (``--json``, ``--help``): a flag takes no
    value."""
    if getattr(self, "is_flag", False):
        return None
    return _option_type_rich(self, ctx)


# typer 0.2x shows a flag's Python type as if it took a value; the help must show it as a flag.
_option_type_rich = typer.core.TyperOption.display_type_rich
typer.core.TyperOption.display_type_rich = _flag_type_rich  # type: ignore[method-assign]
