"""Saves (``save DIR``) or compares (``compare DIR``) the main outputs on real CDNOW data.

Compared bit for bit (values and schema). Used to prove that a refactor changes no output: run
``save`` on the previous commit, ``compare`` on the new one. ``compare DIR RTOL`` also accepts
frames whose float values (and float arrays) are within RTOL relative of the saved ones, every
other column equal, and prints the largest relative difference. Reads
``../shared/data/CDNOW_master.txt`` when present, else the bundled sample.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import polars as pl

import winback
from winback.datasets import load_cdnow, read_cdnow_text

MASTER = Path(__file__).resolve().parents[2] / "shared" / "data" / "CDNOW_master.txt"


def outputs() -> dict[str, pl.DataFrame]:
    tx = read_cdnow_text(MASTER) if MASTER.exists() else load_cdnow()
    shuffled = tx.sample(fraction=1.0, shuffle=True, seed=7)
    out: dict[str, pl.DataFrame] = {}
    scores = winback.silence(tx, as_of="1998-06-30")
    out["silence"] = scores
    out["silence_12h"] = winback.silence(shuffled, as_of="1998-03-31", resolution="12h")
    out["summary"] = winback.summary(tx, calibration_end="1997-09-30", holdout_end="1998-06-30")
    out["summary_d"] = winback.summary(shuffled, unit="D")
    out["compressed"] = winback.compress_summary(out["summary"])
    result = winback.value(tx, as_of="1998-06-30")
    out["value"] = result.frame
    out["value_margin"] = winback.value(shuffled, as_of="1998-03-31", margin=0.3).frame
    out["rfm"] = winback.rfm(tx, as_of="1998-06-30")
    out["quadrant"] = winback.quadrant(out["rfm"])
    out["classify"] = winback.classify(scores, "default")
    camp = winback.campaign(scores, campaign_id="c1", staff=["ann", "bob"])
    for name in ("targets", "assignments", "schedule", "holdout"):
        if hasattr(camp, name):
            value = getattr(camp, name)
            if isinstance(value, pl.DataFrame):
                out[f"campaign_{name}"] = value
    if isinstance(camp, pl.DataFrame):
        out["campaign"] = camp
    moves = winback.migration(tx, as_of=["1997-12-31", "1998-06-30"])
    for name in dir(moves):
        value = getattr(moves, name, None)
        if not name.startswith("_") and isinstance(value, pl.DataFrame):
            out[f"migration_{name}"] = value
    from winback.models import BetaGeoModel, GammaGammaModel, ParetoNBDModel

    params = {
        "bgnbd": BetaGeoModel().fit(out["summary"]).params_,
        "gg": GammaGammaModel().fit(out["summary"]).params_,
        "pnbd": ParetoNBDModel().fit(out["summary"]).params_,
    }
    out["params"] = pl.DataFrame(
        [
            {"model": m, "name": k, "value": float(v)}
            for m, p in params.items()
            for k, v in p.items()
        ]
    )
    return out


def max_relative_difference(before: pl.DataFrame, after: pl.DataFrame) -> float:
    """The largest relative difference between float columns (NaN = NaN, null = null); inf when
    the schemas, the heights or any other column differ."""
    if before.schema != after.schema or before.height != after.height:
        return float("inf")
    worst = 0.0
    for name, dtype in before.schema.items():
        b, a = before.get_column(name), after.get_column(name)
        if dtype.is_float() or (isinstance(dtype, pl.Array) and dtype.inner.is_float()):
            if not b.is_null().equals(a.is_null()):
                return float("inf")
            x = b.drop_nulls().to_numpy().astype(np.float64).ravel()
            y = a.drop_nulls().to_numpy().astype(np.float64).ravel()
            same = (x == y) | (np.isnan(x) & np.isnan(y))
            scale = np.maximum(np.abs(x), np.abs(y))[~same]
            if scale.size:
                worst = max(worst, float(np.max(np.abs(x - y)[~same] / scale)))
        elif not b.equals(a, null_equal=True):
            return float("inf")
    return worst


def main() -> int:
    command, folder = sys.argv[1], Path(sys.argv[2])
    rtol = float(sys.argv[3]) if len(sys.argv) > 3 else 0.0
    frames = outputs()
    if command == "save":
        folder.mkdir(parents=True, exist_ok=True)
        for name, frame in frames.items():
            frame.write_ipc(folder / f"{name}.arrow")
        print(f"saved {len(frames)} frames to {folder}")
        return 0
    failures = 0
    saved = {p.stem for p in folder.glob("*.arrow")}
    for name in sorted(saved | set(frames)):
        if name not in frames or name not in saved:
            print(f"MISSING {name}")
            failures += 1
            continue
        before = pl.read_ipc(folder / f"{name}.arrow")
        if before.equals(frames[name], null_equal=True) and before.schema == frames[name].schema:
            print(f"same    {name} {frames[name].shape}")
        elif rtol > 0 and (moved := max_relative_difference(before, frames[name])) <= rtol:
            print(f"close   {name} {frames[name].shape}: max relative difference {moved:.2e}")
        else:
            print(f"DIFFERS {name}")
            failures += 1
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
