"""Frequency and spend models of the customer-base literature (docs/methods.md#models).

Estimators follow scikit-learn: ``fit(summary)`` returns the model, fitted attributes end in ``_``
(``params_``, ``params_se_``, ``log_likelihood_``, ``converged_``, ``n_iter_``), ``summary()`` is
the parameter table, and ``save``/``load`` write and read JSON (never pickle), validating every
field. ``Model.from_params(...)`` builds a model from known parameters and ``log_likelihood(data)``
scores each customer. A fit records the summary's time unit and occasion resolution (``unit_``,
``resolution_``) and predictions refuse a summary in another one (docs/methods.md#fitting); a
plain frame, which carries neither, gives a :class:`UnitNotCheckedWarning` once per model.

- :class:`BetaGeoModel` (BG/NBD), :class:`ModifiedBetaGeoModel` (MBG/NBD) and
  :class:`ParetoNBDModel` — repeat purchases with dropout, on ``winback.summary`` output;
- :class:`BetaGeoCNBDModel` (BG/CNBD-k) and :class:`ModifiedBetaGeoCNBDModel` (MBG/CNBD-k) —
  BG/NBD and MBG/NBD with regular (Erlang-k) inter-purchase times, k chosen by likelihood;
- :class:`BetaGeoBetaBinomModel` (BG/BB) — transactions at discrete opportunities with
  dropout, on (x, t_x, n) patterns;
- :class:`NBDModel` — purchases per period without dropout (the seed's model);
- :class:`GammaGammaModel` — spend per occasion;
- :func:`customer_lifetime_value` — a count model × Gamma–Gamma, discounted per month;
- :func:`regularity` — Wheat & Morrison's purchase-regularity estimate per customer and for
  the population.

numba compiles the likelihoods on first use (cached on disk afterwards).
"""

from __future__ import annotations

from winback.models._base import BaseModel, UnitNotCheckedWarning, load
from winback.models.beta_geo import BetaGeoModel, ModifiedBetaGeoModel
from winback.models.beta_geo_beta_binom import BetaGeoBetaBinomModel
from winback.models.beta_geo_cnbd import BetaGeoCNBDModel, ModifiedBetaGeoCNBDModel
from winback.models.clv import customer_lifetime_value
from winback.models.gamma_gamma import GammaGammaModel
from winback.models.nbd import NBDModel
from winback.models.pareto_nbd import ParetoNBDModel
from winback.models.regularity import Regularity, regularity

__all__ = [
    "BaseModel",
    "BetaGeoBetaBinomModel",
    "BetaGeoCNBDModel",
    "BetaGeoModel",
    "GammaGammaModel",
    "ModifiedBetaGeoCNBDModel",
    "ModifiedBetaGeoModel",
    "NBDModel",
    "ParetoNBDModel",
    "Regularity",
    "UnitNotCheckedWarning",
    "customer_lifetime_value",
    "load",
    "regularity",
]
