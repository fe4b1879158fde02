"""Start-up preloading for services (docs/serving.md#start-up): pays the first-call costs of the
model and value paths once, before the first request.

The first :func:`winback.summary` + BG/NBD fit or :func:`winback.value` call of a process imports
Numba, SciPy and the models, and loads (or, with no cache, compiles) the Numba kernels it needs
(docs/methods.md#determinism: they are compiled with one flag set and cached on disk). A service
calls :func:`preload` at start-up, before it reports ready: the calls run on a few hundred
customers of the bundled CDNOW data, so with a filled cache it costs the imports and the cache
loads only, and without one it fills the cache.
"""

from __future__ import annotations

import polars as pl

from winback.datasets import load_cdnow
from winback.errors import WinbackFitError
from winback.summary import summary
from winback.value import value

__all__ = ["preload"]

#: Customers of the bundled CDNOW data the preload calls run on: enough for every model to fit,
#: few enough that the calls themselves cost milliseconds.
_CUSTOMERS = 400


def preload() -> None:
    """Imports the models and the value engine and loads every Numba kernel of the summary,
    BG/NBD, MBG/NBD, Pareto/NBD, Gamma–Gamma and period NBD fits and of :func:`winback.value`
    (compiling and caching the ones not in the cache yet), by running them on a small slice of
    the bundled CDNOW data (docs/serving.md#start-up).

    Returns nothing; a later call in the same process starts warm. Set ``NUMBA_CACHE_DIR`` to a
    directory that outlives the process (filled at image build by one call of this function) so
    that a fresh process loads the kernels instead of compiling them.

    Examples
    --------
    >>> import winback
    >>> winback.preload()
    """
    from winback.models import (  # numba and scipy load here
        BetaGeoModel,
        GammaGammaModel,
        ModifiedBetaGeoModel,
        ParetoNBDModel,
    )

    tx = load_cdnow().filter(pl.col("customer_id") <= _CUSTOMERS)
    data = summary(tx, unit="D")
    for model in (BetaGeoModel(), ModifiedBetaGeoModel(), ParetoNBDModel(), GammaGammaModel()):
        try:
            model.fit(data)
        except WinbackFitError:  # the kernels are compiled and loaded all the same
            continue
    value(tx, as_of="1998-06-30")
