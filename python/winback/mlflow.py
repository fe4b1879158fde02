"""An MLflow ``pyfunc`` flavour of the scorer (docs/serving.md#mlflow; optional extra
``winback[mlflow]``): :func:`save_model` / :func:`log_model` store a model directory written
by ``winback fit`` with the scorer's rules and value settings, and the loaded model scores
customers with :meth:`winback.Scorer.score` (docs/methods.md#scorer).

The pyfunc input has **one row per customer** — ``customer_id``, ``ts`` (a list of purchase
times) and optionally ``amount`` (a list of amounts, one per time) — because MLflow's
``spark_udf`` and batch inference hand ``predict`` arbitrary slices of rows and expect one output
row per input row, in order: a customer's whole history must travel in her row. The output has
the columns of :data:`winback.scorer.SCORE_COLUMNS`, row k for input row k. ``as_of`` is a
parameter (``params={"as_of": "2024-06-30"}``); without it, the end of the latest purchase's day
in the batch, as :meth:`~winback.Scorer.score` does — pass it, so that the answer does not depend
on how rows are batched.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

import pandas as pd
import polars as pl

with warnings.catch_warnings():
    # MLflow warns about type hints of its own modules while importing them.
    warnings.simplefilter("ignore")
    import mlflow.pyfunc
    from mlflow.pyfunc.model import PythonModel

from winback.errors import WinbackConfigError, WinbackInputError
from winback.scorer import Scorer

__all__ = ["WinbackPyfunc", "log_model", "save_model", "score_rows"]

_SETTINGS = "winback_settings.json"


class WinbackPyfunc(PythonModel):
    """The pyfunc model: builds the :class:`~winback.Scorer` from the stored artifacts."""

    def load_context(self, context: Any) -> None:
        """Build the scorer from the ``models`` and ``settings`` artifacts."""
        settings = json.loads(Path(context.artifacts["settings"]).read_text())
        rules = settings["rules"]
        if settings.get("rules_file"):
            rules = context.artifacts["rules"]
        self.scorer = Scorer.from_dir(
            context.artifacts["models"], rules=rules, value=settings["value"]
        )

    # MLflow reads these hints to validate inputs: a pandas frame it passes through as is (a
    # frame of lists has no column schema it could check); without hints it warns on every
    # load. The signature saved with the model declares ``as_of``.
    def predict(
        self,
        context: Any,
        model_input: pd.DataFrame,
        params: dict[str, Any] | None = None,
    ) -> pd.DataFrame:
        """Score one customer per input row (see the module docstring); a pandas frame."""
        frame = (
            model_input if isinstance(model_input, pl.DataFrame) else pl.from_pandas(model_input)
        )
        as_of = (params or {}).get("as_of") or None
        return score_rows(self.scorer, frame, as_of).to_pandas()


def score_rows(scorer: Scorer, frame: pl.DataFrame, as_of: str | None) -> pl.DataFrame:
    """One row per customer in, :meth:`Scorer.score`'s row per customer out, in input order."""
    missing = [c for c in ("customer_id", "ts") if c not in frame.columns]
    if missing:
        raise WinbackInputError(
            f"column {missing[0]!r} is missing: the input has one row per customer with "
            "customer_id, ts (a list of purchase times) and optionally amount (a list)"
        )
    if frame.get_column("customer_id").is_duplicated().any():
        raise WinbackInputError(
            "customer_id repeats: send each customer once, with all her purchases"
        )
    columns = ["customer_id", "ts", *(["amount"] if "amount" in frame.columns else [])]
    long = frame.select(columns).explode([c for c in columns if c != "customer_id"])
    scores = scorer.score(long, as_of=as_of, amount_col="amount" if "amount" in columns else None)
    order = frame.select("customer_id").with_row_index("__row")
    out = order.join(scores, on="customer_id", how="left").sort("__row").drop("__row")
    return out


def _signature() -> Any:
    """A signature declaring the ``as_of`` parameter (MLflow drops undeclared parameters)."""
    from mlflow.models.signature import ModelSignature
    from mlflow.types.schema import ParamSchema, ParamSpec

    return ModelSignature(inputs=None, params=ParamSchema([ParamSpec("as_of", "string", "")]))


def _artifacts(folder: Path, models: str | Path, rules: str | Path, value: Any) -> dict[str, str]:
    Scorer.from_dir(models, rules=rules, value=value)  # every file checked before it is stored
    shutil.copytree(models, folder / "models")
    rules_file = Path(str(rules)).suffix == ".toml"
    settings = {"rules": str(rules) if not rules_file else "", "rules_file": rules_file}
    settings["value"] = None if value is None else dict(value)
    (folder / _SETTINGS).write_text(json.dumps(settings))
    out = {"models": str(folder / "models"), "settings": str(folder / _SETTINGS)}
    if rules_file:
        shutil.copy(rules, folder / "rules.toml")
        out["rules"] = str(folder / "rules.toml")
    return out


def save_model(
    path: str | Path,
    models: str | Path,
    *,
    rules: str | Path = "strategy",
    value: Any = None,
    **kwargs: Any,
) -> None:
    """Save the model directory ``models`` (``winback fit -o``) with ``rules`` (a preset name or
    a ``.toml`` file) and ``value`` settings as an MLflow pyfunc model at ``path``; other
    keyword arguments go to :func:`mlflow.pyfunc.save_model`. Raises
    :class:`~winback.WinbackConfigError` for anything the scorer refuses."""
    if not Path(models).is_dir():
        raise WinbackConfigError(f"model directory {str(models)!r} does not exist")
    with tempfile.TemporaryDirectory() as tmp:
        mlflow.pyfunc.save_model(
            str(path),
            python_model=WinbackPyfunc(),
            artifacts=_artifacts(Path(tmp), models, rules, value),
            **{"signature": _signature(), **kwargs},
        )


def log_model(
    name: str,
    models: str | Path,
    *,
    rules: str | Path = "strategy",
    value: Any = None,
    **kwargs: Any,
) -> Any:
    """:func:`save_model`, logged to the active MLflow run as ``name``; returns MLflow's model
    info (its ``model_uri`` loads it: ``mlflow.pyfunc.load_model`` or ``spark_udf``)."""
    with tempfile.TemporaryDirectory() as tmp:
        return mlflow.pyfunc.log_model(
            name=name,
            python_model=WinbackPyfunc(),
            artifacts=_artifacts(Path(tmp), models, rules, value),
            **{"signature": _signature(), **kwargs},
        )
