"""The model set a server process serves and its reload without downtime
(docs/serving.md#http-reload).

A :class:`ModelSet` is one immutable generation: the scorer, what ``GET /v1/models`` shows of
it, and the checksums of the files it came from. :func:`load_model_set` builds the next one
and checks it fully — every file parsed and validated, the scorer built, a probe history scored
through both the batch and the one-customer paths with finite results, the files unchanged
while they were read — before :class:`Models` swaps the reference. A request takes the
current generation once, when it starts, so a swap never changes a request half way; a failed
reload leaves the old generation serving and is recorded for ``/v1/models``.
"""

from __future__ import annotations

import hashlib
import math
import threading
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import numpy as np
import polars as pl

from winback.errors import WinbackError, WinbackReloadError
from winback.scorer import Scorer
from winback.serve.config import ServeConfig

__all__ = ["ModelSet", "Models", "ReloadOutcome", "json_safe", "load_model_set"]

#: A probe history scored before a new model set is accepted (three purchases, with amounts).
_PROBE_TIMES: Final = np.array(["2020-01-03", "2020-02-10", "2020-05-01"], dtype="datetime64[us]")
_PROBE_AMOUNTS: Final = np.array([30.0, 12.5, 40.0])
_PROBE_AS_OF: Final = "2020-06-30"


def json_safe(value: Any) -> Any:
    """A value ready for strict JSON: dates and datetimes as ISO text, NaN and infinities as
    null (the scorer refuses them; this is the last guard), containers converted inside."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def _checksums(folder: Path) -> list[dict[str, Any]]:
    out = []
    for path in sorted(folder.glob("*.json")):
        data = path.read_bytes()
        out.append(
            {"file": path.name, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        )
    return out


@dataclass(frozen=True)
class ModelSet:
    """One generation of models: the scorer and what ``GET /v1/models`` shows of it."""

    scorer: Scorer
    generation: int
    loaded_at: str
    files: tuple[dict[str, Any], ...]

    def describe(self) -> dict[str, Any]:
        """The scorer's models and settings, the files' checksums, generation and load time."""
        described: dict[str, Any] = json_safe(
            {
                **self.scorer.describe(),
                "files": list(self.files),
                "generation": self.generation,
                "loaded_at": self.loaded_at,
            }
        )
        return described


def _probe(scorer: Scorer) -> None:
    """Score the probe history both ways; a non-finite result or an error refuses the set."""
    one = scorer.score_one(_PROBE_TIMES, _PROBE_AMOUNTS, as_of=_PROBE_AS_OF)
    frame = pl.DataFrame({"customer_id": [1, 1, 1], "ts": _PROBE_TIMES, "amount": _PROBE_AMOUNTS})
    many = scorer.score(frame, as_of=_PROBE_AS_OF).row(0, named=True)
    for name, value in one.as_dict().items():
        if isinstance(value, float) and not math.isfinite(value):
            raise WinbackReloadError(
                f"the probe customer's {name} is {value}: the models are unusable"
            )
        if value != many[name]:
            raise WinbackReloadError(
                f"the probe customer's {name} differs between the scoring paths"
            )


def load_model_set(config: ServeConfig, generation: int) -> ModelSet:
    """Load, validate and probe the models of ``config`` (blocking: run it off the event loop).

    Raises
    ------
    WinbackReloadError
        A missing, corrupt or invalid file (the message names it and the field), a probe that
        fails, or files that changed while they were read.
    """
    folder = Path(config.models)
    try:
        before = _checksums(folder)
        scorer = config.scorer()
        _probe(scorer)
        after = _checksums(folder)
    except WinbackReloadError:
        raise
    except (WinbackError, OSError, ValueError) as exc:
        raise WinbackReloadError(str(exc)) from None
    if before != after:
        raise WinbackReloadError(
            f"the files in {str(folder)!r} changed while they were read; write them to a new "
            "directory and move it into place, then reload again"
        )
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    return ModelSet(scorer, generation, stamp, tuple(after))


@dataclass(frozen=True)
class ReloadOutcome:
    """The last reload: when, whether it was accepted, the error, the generation serving."""

    at: str
    ok: bool
    error: str | None
    generation: int

    def as_dict(self) -> dict[str, Any]:
        """Plain data for ``/v1/models`` and the admin response."""
        return asdict(self)


class Models:
    """The current :class:`ModelSet` of a process and its reloads (one at a time)."""

    def __init__(self, config: ServeConfig, first: ModelSet) -> None:
        self.config = config
        self.current = first
        self.last_reload: ReloadOutcome | None = None
        self._lock = threading.Lock()

    def reload(self) -> ReloadOutcome:
        """Build the next generation and swap it in, or keep the current one and record why
        (blocking; concurrent calls run one after the other)."""
        with self._lock:
            generation = self.current.generation + 1
            stamp = datetime.now(UTC).isoformat(timespec="seconds")
            try:
                candidate = load_model_set(self.config, generation)
            except WinbackReloadError as exc:
                outcome = ReloadOutcome(stamp, False, str(exc), self.current.generation)
            else:
                # One reference assignment: requests that started on the old set finish on it.
                self.current = candidate
                outcome = ReloadOutcome(stamp, True, None, generation)
            self.last_reload = outcome
            return outcome

    def describe(self) -> dict[str, Any]:
        """The current set and the last reload, for ``GET /v1/models``."""
        out = self.current.describe()
        out["last_reload"] = None if self.last_reload is None else self.last_reload.as_dict()
        return out
