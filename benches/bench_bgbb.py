"""Benchmark: the BG/BB fit on Hardie's donations data (11,104 supporters, 22 patterns), the
target of issue 14 (< 10 ms), side by side with lifetimes' BetaGeoBetaBinomFitter when the
benchmark environment (`.venv-bench`, `make bench-env`) exists.

    .venv/bin/python benches/bench_bgbb.py              # best and median of 50 fits
    .venv/bin/python benches/bench_bgbb.py --repeat 5   # quicker
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import polars as pl

from winback.models import BetaGeoBetaBinomModel

ROOT = Path(__file__).resolve().parents[1]
LIFETIMES_PYTHON = ROOT / ".venv-bench" / "bin" / "python"
#: (x, t_x, customers) of the donations' 1995 cohort, n = 6 (Fader, Hardie & Shang 2010).
DONATIONS = [
    (0, 0, 3464), (1, 1, 1091), (1, 2, 277), (1, 3, 129), (1, 4, 78), (1, 5, 119), (1, 6, 129),
    (2, 2, 613), (2, 3, 255), (2, 4, 155), (2, 5, 173), (2, 6, 234), (3, 3, 322), (3, 4, 181),
    (3, 5, 225), (3, 6, 357), (4, 4, 240), (4, 5, 284), (4, 6, 512), (5, 5, 335), (5, 6, 728),
    (6, 6, 1203),
]  # fmt: skip
_LIFETIMES = """
import json, sys, time
import numpy as np
from lifetimes import BetaGeoBetaBinomFitter
rows = json.loads(sys.argv[1]); repeat = int(sys.argv[2])
x, t, w = (np.array([r[i] for r in rows], dtype=float) for i in range(3))
n = np.full_like(x, 6.0)
times = []
for _ in range(repeat):
    start = time.perf_counter()
    fitter = BetaGeoBetaBinomFitter().fit(x, t, n, w)
    times.append(time.perf_counter() - start)
print(json.dumps({"times": times, "params": dict(fitter.params_)}))
"""


def patterns() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "frequency": [r[0] for r in DONATIONS],
            "recency": [r[1] for r in DONATIONS],
            "n": [6] * len(DONATIONS),
            "count": [r[2] for r in DONATIONS],
        }
    )


def run(repeat: int = 50) -> dict[str, object]:
    """Times ``repeat`` fits (after one warm-up that compiles or loads the kernels)."""
    data = patterns()
    model = BetaGeoBetaBinomModel().fit(data, weights_col="count")
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        BetaGeoBetaBinomModel().fit(data, weights_col="count")
        times.append(time.perf_counter() - start)
    result: dict[str, object] = {
        "winback_best_ms": 1e3 * min(times),
        "winback_median_ms": 1e3 * statistics.median(times),
        "params": model.params_,
        "log_likelihood": model.log_likelihood_,
    }
    if LIFETIMES_PYTHON.exists():
        out = subprocess.run(
            [str(LIFETIMES_PYTHON), "-c", _LIFETIMES, json.dumps(DONATIONS), str(repeat)],
            capture_output=True,
            text=True,
            check=True,
        )
        side = json.loads(out.stdout)
        result["lifetimes_median_ms"] = 1e3 * statistics.median(side["times"])
        result["lifetimes_params"] = side["params"]
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=50)
    args = parser.parse_args(argv)
    json.dump(run(args.repeat), sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
