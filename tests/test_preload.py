"""winback.preload (docs/serving.md#start-up): after it, the kernels of the model and value paths
are loaded in the process, so the first real call compiles nothing."""

from __future__ import annotations

import json
import subprocess
import sys

SCRIPT = """
import json
import winback
from winback._kernels import likelihood, newton, value

kernels = {
    "bgnbd_newton": newton._beta_geo_range,
    "gamma_gamma_newton": newton._gamma_gamma_range,
    "nbd": likelihood._nbd_terms,
    "chain_counts": value.transition_counts,
    "customer_totals": value.customer_totals,
}
before = {name: len(k.signatures) for name, k in kernels.items()}
winback.preload()
after = {name: len(k.signatures) for name, k in kernels.items()}
print(json.dumps({"before": before, "after": after}))
"""


def test_preload_loads_the_model_and_value_kernels() -> None:
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True)
    counts = json.loads(out.stdout.strip().splitlines()[-1])
    assert all(n == 0 for n in counts["before"].values()), counts
    assert all(n >= 1 for n in counts["after"].values()), counts
