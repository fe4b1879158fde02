"""``import winback`` stays light: the public names load their rooms on first use (PEP 562).

Each check runs in a fresh interpreter, so what an earlier test imported cannot hide a
regression. Start-up time is not asserted (docs/architecture.md: no wall-clock tests); what is
imported is.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import winback

#: Libraries that ``import winback`` must not load (each costs 0.1–0.6 s of start-up).
HEAVY = (
    "numpy",
    "polars",
    "pyarrow",
    "scipy",
    "numba",
    "altair",
    "vl_convert",
    "sklearn",
    "pandas",
    "sqlalchemy",
)


def _loaded(code: str) -> dict[str, object]:
    """Runs ``code`` in a fresh interpreter; it prints one JSON object as its last line."""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    loaded: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    return loaded


def test_import_winback_loads_no_heavy_library() -> None:
    out = _loaded(
        "import json, sys, winback; "
        f"print(json.dumps({{'heavy': [m for m in {HEAVY!r} if m in sys.modules], "
        "'rooms': sorted(m for m in sys.modules if m.startswith('winback.'))}))"
    )
    assert out["heavy"] == []
    assert out["rooms"] == ["winback._version", "winback.errors"]


def test_the_cli_help_loads_no_model_library() -> None:
    out = _loaded(
        "import contextlib, io, json, sys; sys.argv = ['winback', '--help']; "
        "import winback.cli\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "    winback.cli.main()\n"
        "print(json.dumps({'heavy': [m for m in ('scipy', 'numba', 'altair', 'pyarrow', "
        "'sklearn', 'sqlalchemy') if m in sys.modules]}))"
    )
    assert out["heavy"] == []


def test_the_check_sees_an_eager_import() -> None:
    """The subprocess check can fail: a heavy import made at start-up is reported."""
    out = _loaded(
        "import json, sys, winback, winback.models; "
        f"print(json.dumps({{'heavy': [m for m in {HEAVY!r} if m in sys.modules]}}))"
    )
    assert {"numpy", "polars", "scipy"} <= set(out["heavy"])


@pytest.mark.parametrize("name", winback.__all__)
def test_every_public_name_resolves_to_its_room(name: str) -> None:
    found = getattr(winback, name)
    assert found is not None
    assert name in dir(winback)
    if callable(found) and hasattr(found, "__module__") and name != "events":
        home = sys.modules[found.__module__]
        assert getattr(home, name) is found


def test_functions_named_like_their_room_stay_functions() -> None:
    """Importing a room's submodule after the fact does not replace the package's function by
    the module (``winback.value`` stays the function, as ``from winback import value`` gives)."""
    out = _loaded(
        "import json, winback\n"
        "import winback.value.api, winback.report._build, winback.silence, winback.summary\n"
        "import winback.backtest, winback.campaign, winback.rfm, winback.preload\n"
        "from winback import value\n"
        "names = ('value', 'report', 'silence', 'summary', 'backtest', 'campaign', 'rfm', "
        "'preload', 'lapse', 'recommend')\n"
        "print(json.dumps({'callable': {n: callable(getattr(winback, n)) for n in names}, "
        "'same': value is winback.value, 'events': type(winback.events).__name__}))"
    )
    assert out["callable"] == dict.fromkeys(out["callable"], True)  # type: ignore[arg-type]
    assert out["same"] is True
    assert out["events"] == "module"


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'no_such_function'"):
        _ = winback.no_such_function  # type: ignore[attr-defined]


def test_rooms_are_attributes_of_the_package() -> None:
    """``import winback`` then ``winback.models.BetaGeoModel``: a room loads on first access, as
    when the package imported every room eagerly."""
    out = _loaded(
        "import json, winback; "
        "print(json.dumps({'model': winback.models.BetaGeoModel.__name__, "
        "'datasets': callable(winback.datasets.load_cdnow), "
        "'io': callable(winback._io.as_of_to_micros), "
        "'events': type(winback.events).__name__}))"
    )
    assert out == {"model": "BetaGeoModel", "datasets": True, "io": True, "events": "module"}
