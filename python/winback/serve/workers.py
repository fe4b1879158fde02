"""What the worker processes of one server share (docs/serving.md#http-reload): a state
directory that :func:`winback.serve.run` creates for ``--workers N`` and removes when the server
stops, holding prometheus_client's multiprocess metrics (``metrics/``) and the reload board.

The reload board is a file counting the reloads asked of the server. ``POST /v1/admin/reload``
reaches one worker (whichever accepted the connection); that worker validates and swaps its own
model set first and, when the new set is accepted, adds one to the board. Every worker reads the
board every :data:`WATCH_INTERVAL_S` seconds and reloads when the count passes the one it has
seen, so every worker serves the new set within a fraction of a second; each reload
is validated in full by the worker doing it, and a worker whose reload fails keeps its old set
and logs the error. The count is updated under an exclusive ``flock`` so two workers posting
at once both count.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import Final

__all__ = ["ENV_STATE_DIR", "WATCH_INTERVAL_S", "ReloadBoard"]

#: The environment variable naming the state directory the workers share.
ENV_STATE_DIR: Final = "WINBACK_SERVE_STATE_DIR"
#: How often, in seconds, each worker looks at the reload board.
WATCH_INTERVAL_S: Final = 0.2
_BOARD: Final = "reloads"


class ReloadBoard:
    """The reload count in ``<state dir>/reloads`` (see the module docstring)."""

    def __init__(self, directory: str | Path) -> None:
        self.path = Path(directory) / _BOARD
        self.path.touch(exist_ok=True)
        self._seen = self.read()

    @classmethod
    def from_env(cls) -> ReloadBoard | None:
        """The board of :data:`ENV_STATE_DIR`, or None for a single-process server."""
        directory = os.environ.get(ENV_STATE_DIR)
        return cls(directory) if directory else None

    def read(self) -> int:
        """The count on the board (0 when empty or unreadable), read under a shared lock."""
        try:
            with self.path.open("r") as board:
                fcntl.flock(board, fcntl.LOCK_SH)
                try:
                    text = board.read().strip()
                finally:
                    fcntl.flock(board, fcntl.LOCK_UN)
        except OSError:
            return 0
        return int(text) if text.isdigit() else 0

    def post(self) -> int:
        """Add one reload to the board (this worker has done it: it is marked seen)."""
        with self.path.open("r+") as board:
            fcntl.flock(board, fcntl.LOCK_EX)
            try:
                text = board.read().strip()
                count = (int(text) if text.isdigit() else 0) + 1
                board.seek(0)
                board.truncate()
                board.write(str(count))
                board.flush()
            finally:
                fcntl.flock(board, fcntl.LOCK_UN)
        self._seen = max(self._seen, count)
        return count

    def news(self) -> bool:
        """Whether other workers posted a reload this worker has not done yet."""
        count = self.read()
        if count > self._seen:
            self._seen = count
            return True
        return False
