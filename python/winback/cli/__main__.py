"""``python -m winback.cli``: the ``winback`` command."""

from __future__ import annotations

from winback.cli._app import main

if __name__ == "__main__":
    main()
