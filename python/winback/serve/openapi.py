"""The OpenAPI 3.1 description of the service (``GET /openapi.json``,
docs/serving.md#http): written by hand, next to the routes it describes
(``tests/serve/test_openapi.py`` checks that every route of the app is in it and nothing else)."""

from __future__ import annotations

from typing import Any

from winback._version import __version__
from winback.scorer import SCORE_COLUMNS

__all__ = ["openapi_spec"]

_PROBLEM = {"$ref": "#/components/schemas/Problem"}
_STRINGS = {"status", "rank_ratio_group", "silence_band", "value_level", "quadrant", "strategy"}
_INTEGERS = {"n_occasions", "recency_rank", "frequency"}


def _problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/problem+json": {"schema": _PROBLEM}},
    }


def _json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _column(name: str) -> dict[str, Any]:
    if name in ("first_ts", "last_ts"):
        return {"type": "string", "description": "ISO date (or date-time below day resolution)"}
    if name in _STRINGS:
        return {"type": ["string", "null"]}
    if name in _INTEGERS:
        return {"type": ["integer", "null"]}
    return {"type": ["number", "null"]}


def openapi_spec() -> dict[str, Any]:
    """The OpenAPI document as plain data."""
    score_row = {
        "type": "object",
        "description": "One customer's scores: the columns of winback.Scorer.score "
        "(docs/methods.md#scorer).",
        "properties": {
            "customer_id": {"type": ["integer", "string"]},
            **{c: _column(c) for c in SCORE_COLUMNS if c != "customer_id"},
        },
        "required": list(SCORE_COLUMNS),
    }
    purchase = {
        "type": "object",
        "additionalProperties": False,
        "required": ["ts"],
        "properties": {
            "ts": {
                "type": "string",
                "description": "ISO date or naive date-time (local wall-clock time)",
            },
            "amount": {"type": "number", "description": "on every purchase or on none"},
        },
    }
    request = {
        "type": "object",
        "additionalProperties": False,
        "required": ["customers"],
        "properties": {
            "as_of": {
                "type": "string",
                "description": "ISO date or date-time; default: the "
                "end of the latest purchase's day in the request",
            },
            "customers": {
                "type": "array",
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["customer_id", "purchases"],
                    "properties": {
                        "customer_id": {"type": ["integer", "string"]},
                        "purchases": {"type": "array", "minItems": 1, "items": purchase},
                    },
                },
            },
        },
    }
    arrow = {
        "type": "string",
        "format": "binary",
        "description": "An Arrow IPC stream: in, columns customer_id (int64 or string), ts "
        "(date or timestamp without time zone) and optionally amount (number); out, the "
        "columns of winback.Scorer.score.",
    }
    refusals = {
        "400": _problem("the body is not JSON / not an Arrow IPC stream"),
        "408": _problem("the body did not arrive in time"),
        "413": _problem("body, customers or one customer's purchases over the limit"),
        "415": _problem("another content type"),
        "422": _problem("a field of the wrong type, missing, unknown; named with the customer"),
        "503": _problem("too many requests at once, or scoring took too long (Retry-After)"),
    }
    status = {"type": "object", "properties": {"status": {"type": "string"}}}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "winback scoring service",
            "version": __version__,
            "description": "Customer silence, P(alive), expected purchases and value, and the "
            "recommended strategy, from saved models (docs/serving.md).",
        },
        "paths": {
            "/v1/score": {
                "post": {
                    "summary": "Score customers' purchase histories",
                    "parameters": [
                        {
                            "name": "as_of",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "string"},
                            "description": "the snapshot time, for Arrow bodies only",
                        }
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {"schema": request},
                            "application/vnd.apache.arrow.stream": {"schema": arrow},
                        },
                    },
                    "responses": {
                        "200": {
                            "description": "one row per customer, sorted by customer_id, in the "
                            "request's format",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "properties": {
                                            "customers": {"type": "array", "items": score_row}
                                        },
                                    }
                                },
                                "application/vnd.apache.arrow.stream": {"schema": arrow},
                            },
                        },
                        **refusals,
                    },
                }
            },
            "/v1/models": {
                "get": {
                    "summary": "The models serving: names, parameters, file checksums, "
                    "generation, last reload, limits",
                    "responses": {"200": _json("the model set", {"type": "object"})},
                }
            },
            "/v1/admin/reload": {
                "post": {
                    "summary": "Reload the models from their directory (off without a token)",
                    "security": [{"bearer": []}],
                    "responses": {
                        "200": _json("the new set serves", {"type": "object"}),
                        "401": _problem("no or a wrong token"),
                        "404": _problem("the admin endpoints are off"),
                        "422": _problem("the new set was refused; the old one keeps serving"),
                    },
                }
            },
            "/healthz": {
                "get": {"summary": "Liveness", "responses": {"200": _json("alive", status)}}
            },
            "/readyz": {
                "get": {"summary": "Readiness", "responses": {"200": _json("ready", status)}}
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics",
                    "responses": {
                        "200": {
                            "description": "the Prometheus text format",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        }
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "summary": "This document",
                    "responses": {"200": _json("OpenAPI 3.1", {"type": "object"})},
                }
            },
        },
        "components": {
            "schemas": {
                "Problem": {
                    "type": "object",
                    "description": "RFC 9457 problem details",
                    "required": ["type", "title", "status", "detail"],
                    "properties": {
                        "type": {"type": "string"},
                        "title": {"type": "string"},
                        "status": {"type": "integer"},
                        "detail": {"type": "string"},
                        "instance": {"type": "string"},
                        "field": {"type": "string"},
                        "customer_index": {"type": "integer"},
                        "customer_id": {"type": ["integer", "string", "null"]},
                    },
                }
            },
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
