"""The Typer app, its global options (--debug, --quiet), and ``main``: the entry point that maps
winback errors to one-line messages and exit codes.

Exit codes: 0 success, 2 bad input or arguments, 3 a model could not be fitted, 1 anything else.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from winback.cli._common import console, state
from winback.errors import WinbackConfigError, WinbackError, WinbackFitError, WinbackInputError

__all__ = ["EXIT_BAD_INPUT", "EXIT_FIT_FAILURE", "GLOBAL_FLAGS", "app", "main"]

app = typer.Typer(
    name="winback",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

EXIT_BAD_INPUT = 2
EXIT_FIT_FAILURE = 3

#: Options of the ``winback`` group that are also accepted after the command name.
GLOBAL_FLAGS = ("--quiet", "-q", "--debug")


@app.callback()
def _global_options(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors.")] = False,
) -> None:
    """Find customers going silent, say how silent they are, and win them back.

    Examples:

      winback demo

      winback report sales.parquet -o report.html --as-of 2024-06-30

      winback score sales.parquet --as-of 2024-06-30 -o scores.parquet

      winback migrate sales.parquet --as-of 2024-03-31 --as-of 2024-06-30 -o migration/

      winback fit sales.parquet -m bgnbd -m gg -o models/

    Exit codes: 0 success, 2 bad input or arguments, 3 a model could not be fitted, 1 other.

    Errors print one line; winback --debug COMMAND … shows the traceback.

    --json (on each command) prints a JSON summary on stdout; --quiet prints only errors.
    """
    state["debug"] = debug
    state["quiet"] = quiet


def main() -> None:
    """Entry point: runs the app and turns winback errors into one-line messages and exit codes."""
    try:
        app(args=_hoist_global_flags(sys.argv[1:]), prog_name="winback", standalone_mode=False)
    except (WinbackInputError, WinbackConfigError) as exc:
        _fail(exc, EXIT_BAD_INPUT)
    except WinbackFitError as exc:
        _fail(exc, EXIT_FIT_FAILURE)
    except WinbackError as exc:
        _fail(exc, 1)
    except typer.Abort:
        console.print("aborted")
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:
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


def _fail(exc: BaseException, code: int) -> None:
    if state["debug"]:
        console.print_exception()
    else:
        console.print(f"[red]error:[/] {exc}", highlight=False, soft_wrap=True)
    sys.exit(code)
