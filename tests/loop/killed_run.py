"""``python tests/loop/killed_run.py POINT ARGS…``: the ``winback`` command (``ARGS``) in a process
that kills itself with SIGKILL when a run reaches the checkpoint ``POINT``
(docs/loop.md#a-killed-run).

The crash tests start this wrapper instead of ``winback``: it replaces
:func:`winback.loop.pipeline.checkpoint` (a no-op in winback) in its own process before the
command runs, so no test hook ships in winback's code paths and nothing is read from the
environment.
"""

from __future__ import annotations

import os
import signal
import sys


def kill_at(point: str) -> None:
    """Makes the runs of this process SIGKILL themselves at the checkpoint ``point``."""
    import winback.loop.pipeline as pipeline

    def checkpoint(name: str) -> None:
        if name == point:
            os.kill(os.getpid(), signal.SIGKILL)

    pipeline.checkpoint = checkpoint


def main(argv: list[str]) -> None:
    point, *args = argv
    kill_at(point)
    from winback.cli._app import main as winback

    sys.argv = ["winback", *args]
    winback()


if __name__ == "__main__":
    main(sys.argv[1:])
