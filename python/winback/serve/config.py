"""What a server process is built from (docs/serving.md#http-limits): the :class:`Limits` of one
request and the :class:`ServeConfig` (model directory, rules, value settings, limits)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Final

from winback._options import (
    SERVE_MAX_BODY_BYTES,
    SERVE_MAX_CONCURRENCY,
    SERVE_MAX_CUSTOMERS,
    SERVE_MAX_PURCHASES,
    SERVE_TIMEOUT_S,
)
from winback.errors import WinbackConfigError
from winback.scorer import Scorer

__all__ = ["ENV_CONFIG", "Limits", "ServeConfig"]

#: The environment variable through which :func:`winback.serve.run` hands the configuration
#: (:meth:`ServeConfig.to_json`) to each uvicorn worker process.
ENV_CONFIG: Final = "WINBACK_SERVE_CONFIG"


@dataclass(frozen=True)
class Limits:
    """What one request may hold and take, and how many run at once
    (docs/serving.md#http-limits).

    Attributes
    ----------
    max_body_bytes : request body size in bytes; larger is 413.
    max_customers : customers per request; more is 413.
    max_purchases : purchases per customer; more is 413 naming the customer.
    timeout_s : seconds a request may take from its arrival, in seconds: a body not received by
        then is 408, a score not computed by then is 503.
    max_concurrency : requests served at once (health, readiness and metrics not counted);
        more are refused at once with 503 and ``Retry-After``.
    """

    max_body_bytes: int = SERVE_MAX_BODY_BYTES
    max_customers: int = SERVE_MAX_CUSTOMERS
    max_purchases: int = SERVE_MAX_PURCHASES
    timeout_s: float = SERVE_TIMEOUT_S
    max_concurrency: int = SERVE_MAX_CONCURRENCY

    def __post_init__(self) -> None:
        """Each count must be a whole number ≥ 1 and the timeout a finite number > 0
        (``WinbackConfigError`` naming it)."""
        for name, value in asdict(self).items():
            if name == "timeout_s":
                if (
                    isinstance(value, bool)
                    or not isinstance(value, int | float)
                    or not math.isfinite(value)
                    or value <= 0
                ):
                    raise WinbackConfigError(
                        f"serve limit {name}={value!r} must be a number of seconds > 0"
                    )
                object.__setattr__(self, name, float(value))
            elif isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise WinbackConfigError(f"serve limit {name}={value!r} must be a whole number ≥ 1")


@dataclass(frozen=True)
class ServeConfig:
    """What a server process builds its app from: the model directory, the scorer's rules and
    value settings (as for :meth:`Scorer.from_dir`) and the :class:`Limits`."""

    models: str
    rules: str = "strategy"
    value: Mapping[str, Any] | None = None
    limits: Limits = field(default_factory=Limits)

    def to_json(self) -> str:
        """The configuration as JSON (how :func:`~winback.serve.run` hands it to workers)."""
        return json.dumps({**asdict(self), "limits": asdict(self.limits)})

    @classmethod
    def from_json(cls, text: str) -> ServeConfig:
        """The configuration :meth:`to_json` wrote."""
        raw = json.loads(text)
        return cls(
            models=raw["models"],
            rules=raw["rules"],
            value=raw["value"],
            limits=Limits(**raw["limits"]),
        )

    def scorer(self) -> Scorer:
        """The scorer, every file validated (errors name the file and field)."""
        return Scorer.from_dir(self.models, rules=self.rules, value=self.value)
