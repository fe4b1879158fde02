"""All of winback's Numba code, in one room with one set of compile flags.

Every kernel is compiled with :data:`jit`: cached on disk, ``fastmath`` off (so results are the
same bits on every machine and run: docs/methods.md#determinism) and ``nogil`` (so the shared
pool in ``winback._parallel`` runs chunks on real threads). Nothing outside this package imports
``numba``; kernels here import nothing from winback but each other and ``winback._parallel``.
Modules: ``special`` (digamma and friends), ``likelihood`` (per-model log-likelihoods and
gradients), ``newton`` (exact Hessian passes), ``bgbb`` (the BG/BB model), ``data`` (input checks
and compression helpers), ``value`` (the value engine's loops).
"""

from __future__ import annotations

import numba

__all__ = ["jit"]

#: The one decorator for every kernel: ``numba.njit(cache=True, fastmath=False, nogil=True)``.
jit = numba.njit(cache=True, fastmath=False, nogil=True)
