"""The report's built-in sections (docs/methods.md#outputs), one module per topic; importing this
package registers them all.

The report shows them by their registered ``order``, not by module: :mod:`.overview` (10 the data
summary, 100 the parameters used), :mod:`.silence` (20 TrF, 30 S), :mod:`.cold_start` (35 the
customers below the minimum), :mod:`.rfm` (40 the RFM grid, 50 the quadrants), :mod:`.migration`
(60), :mod:`.funnels` (65 engagement events, only when given), :mod:`.value` (70 the value
tiers, 75 the Markov chain), :mod:`.backtest` (78 the forecasts' back-test, opt-in),
:mod:`.models` (80 calibration vs holdout), :mod:`.campaign` (90 the activation list) and
:mod:`.scorecards` (95 the daily loop's staff scorecards, when given).
:mod:`.common` holds what they share.
"""

from __future__ import annotations

from winback.report._sections.backtest import backtest_section
from winback.report._sections.campaign import CAMPAIGN_ID, activation_section, campaign_input
from winback.report._sections.cold_start import cold_start_section
from winback.report._sections.funnels import funnels_section
from winback.report._sections.migration import migration_section
from winback.report._sections.models import calibration_section
from winback.report._sections.overview import data_summary, parameters_section, summary_figures
from winback.report._sections.rfm import quadrant_section, rfm_section
from winback.report._sections.scorecards import scorecard_section
from winback.report._sections.silence import silence_score_section, trf_section
from winback.report._sections.value import markov_section, value_section

__all__ = [
    "CAMPAIGN_ID",
    "activation_section",
    "backtest_section",
    "calibration_section",
    "campaign_input",
    "cold_start_section",
    "data_summary",
    "funnels_section",
    "markov_section",
    "migration_section",
    "parameters_section",
    "quadrant_section",
    "rfm_section",
    "scorecard_section",
    "silence_score_section",
    "summary_figures",
    "trf_section",
    "value_section",
]
