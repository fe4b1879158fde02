"""One Numba specialisation per kernel and argument types on the report's path: no kernel is
compiled (empty cache) or loaded (filled cache) twice for arrays that differ only in being
writable or read-only (benches/README.md, "Issue 18: start-up (report18)")."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

from winback._kernels.newton import read_only

CHILD = r"""
import json, tempfile
import numba
import winback
from winback.datasets import load_cdnow
from winback._kernels import chain, data, likelihood, newton, occasions, value

winback.report(load_cdnow(), output=tempfile.mktemp(suffix=".html"), as_of="1998-06-30")


def erase_mutability(sig):
    return tuple(
        t.copy(readonly=False) if isinstance(t, numba.types.Array) else t for t in sig
    )


out = {}
for module in (chain, data, likelihood, newton, occasions, value):
    for name in dir(module):
        kernel = getattr(module, name)
        if isinstance(kernel, numba.core.registry.CPUDispatcher) and kernel.signatures:
            sigs = kernel.signatures
            out[f"{module.__name__}.{name}"] = [len(sigs), len(set(map(erase_mutability, sigs)))]
print(json.dumps(out))
"""


def test_read_only_is_a_view_not_a_copy() -> None:
    a = np.arange(5.0)
    view = read_only(a)
    assert not view.flags.writeable
    assert np.shares_memory(view, a)
    assert a.flags.writeable  # the caller's array is untouched
    assert read_only(view) is view
    assert read_only(3) == 3


def test_report_dispatches_no_kernel_twice_for_mutability() -> None:
    out = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, check=True, timeout=600
    )
    counts = json.loads(out.stdout.strip().splitlines()[-1])
    assert "winback._kernels.newton._pareto_range" in counts
    assert "winback._kernels.data.scatter" in counts
    twice = {name: c for name, c in counts.items() if c[0] != c[1]}
    assert twice == {}
