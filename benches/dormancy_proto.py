"""Prototype (issue 13, hold13): a purchase process that can fall dormant and come back.

    .venv/bin/python benches/dormancy_proto.py --sims 20   # ≈ 2–3 min CPU

Each customer alternates between an active state (Poisson purchases at rate λ, λ ~ Gamma(r, α))
and a dormant one (no purchases): active → dormant at rate μ, dormant → active at rate ρ (a
two-state Markov-modulated Poisson process, active at the first purchase). ρ = 0 is a
Pareto/NBD with one dropout rate. The likelihood needs the inter-purchase gaps, not only
(x, t_x, T): gap Δ contributes λ · [exp((Q − Λ)Δ)]_AA and the silence since the last purchase
τ = T − t_x contributes [exp((Q − Λ)τ) 1]_A, with Q the generator and Λ = diag(λ, 0); λ is
integrated numerically on a log-spaced grid under its Gamma prior.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
from scipy import sparse
from scipy.optimize import minimize
from scipy.special import gammaln

GRID = np.geomspace(1e-5, 40.0, 240)
LOG_STEP = np.log(GRID[1] / GRID[0])


def _eig(lam: np.ndarray, mu: float, rho: float) -> tuple[np.ndarray, np.ndarray]:
    tr = -(mu + lam + rho)
    disc = np.sqrt(np.maximum(tr * tr - 4.0 * lam * rho, 0.0))
    return (tr + disc) / 2.0, (tr - disc) / 2.0  # e1 ≥ e2, both ≤ 0


def _log_terms(
    lam: np.ndarray, mu: float, rho: float, t: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """log [exp(Mt)]_AA and log [exp(Mt)]_AD, M = Q − Λ (broadcast λ × t)."""
    e1, e2 = _eig(lam, mu, rho)
    gap = np.maximum(e1 - e2, 1e-300)
    decay = np.exp((e2 - e1) * t)
    a_aa = (-(mu + lam) - e2) - decay * (-(mu + lam) - e1)
    aa = e1 * t + np.log(np.maximum(a_aa, 1e-300)) - np.log(gap)
    ad = e1 * t + np.log(mu) + np.log(np.maximum(-np.expm1((e2 - e1) * t), 1e-300)) - np.log(gap)
    return aa, ad


class Data:
    """Gaps and silences of the customers born by ``cutoff`` (weeks)."""

    def __init__(self, events: pl.DataFrame, cutoff: float) -> None:
        ev = events.filter(pl.col("t") <= cutoff).sort("customer_id", "t")
        ev = ev.with_columns(pl.col("t").diff().over("customer_id").alias("gap"))
        per = ev.group_by("customer_id", maintain_order=True).agg(
            pl.col("t").max().alias("last"), (pl.len() - 1).alias("x")
        )
        self.ids = per.get_column("customer_id")
        self.silence = cutoff - per.get_column("last").to_numpy()
        self.x = per.get_column("x").to_numpy()
        gaps = ev.filter(pl.col("gap").is_not_null())
        codes = {c: i for i, c in enumerate(self.ids.to_list())}
        owner = np.array(
            [codes[c] for c in gaps.get_column("customer_id").to_list()], dtype=np.int64
        )
        # Occasions are whole days: few distinct gaps and silences, whatever the customer count.
        gap_days = np.rint(gaps.get_column("gap").to_numpy() * 7.0).astype(np.int64)
        self.gap_values, gap_idx = np.unique(gap_days, return_inverse=True)
        self.counts = sparse.csr_matrix(
            (np.ones(owner.size), (owner, gap_idx)), shape=(self.x.size, self.gap_values.size)
        )
        self.gap_values = self.gap_values / 7.0
        self.silence_values, self.silence_idx = np.unique(
            np.round(self.silence, 9), return_inverse=True
        )

    def loglik_grid(self, mu: float, rho: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per customer and grid λ: log-likelihood given λ, and log P(active / dormant at T)."""
        lam = GRID[None, :]
        aa, _ = _log_terms(lam, mu, rho, self.gap_values[:, None])
        per_gap = np.log(lam) + aa
        total = np.asarray(self.counts @ per_gap)
        tail_a, tail_d = _log_terms(lam, mu, rho, self.silence_values[:, None])
        tail = np.logaddexp(tail_a, tail_d)
        i = self.silence_idx
        return total + tail[i], (tail_a - tail)[i], (tail_d - tail)[i]


def _log_prior(r: float, alpha: float) -> np.ndarray:
    """log of Gamma(r, α) density × dλ on the log grid (λ dlogλ)."""
    return r * np.log(alpha) - gammaln(r) + r * np.log(GRID) - alpha * GRID + np.log(LOG_STEP)


def negloglik(theta: np.ndarray, data: Data) -> float:
    r, alpha, mu, rho = np.exp(theta)
    ll, _, _ = data.loglik_grid(mu, rho)
    lp = _log_prior(r, alpha)
    m = ll + lp[None, :]
    top = m.max(axis=1, keepdims=True)
    return -float(np.sum(top[:, 0] + np.log(np.exp(m - top).sum(axis=1))))


def fit(data: Data, rho_zero: bool = False) -> dict[str, Any]:
    """Maximum likelihood (L-BFGS-B on the log-parameters, numerical gradient)."""
    start = np.log([0.5, 5.0, 0.05, 0.02])
    if rho_zero:

        def f(th: np.ndarray) -> float:
            return negloglik(np.append(th, np.log(1e-9)), data)

        res = minimize(f, start[:3], method="L-BFGS-B", bounds=[(-12, 8)] * 3)
        theta = np.append(res.x, np.log(1e-9))
    else:
        res = minimize(
            lambda th: negloglik(th, data), start, method="L-BFGS-B", bounds=[(-12, 8)] * 4
        )
        theta = res.x
    r, alpha, mu, rho = np.exp(theta)
    return {
        "r": r,
        "alpha": alpha,
        "mu": mu,
        "rho": rho,
        "loglik": -float(res.fun),
        "nfev": int(res.nfev),
    }


def expected(params: dict[str, Any], data: Data, horizon: float) -> np.ndarray:
    """E[purchases in (T, T + horizon]] per customer, given the history."""
    r, alpha, mu, rho = (params[k] for k in ("r", "alpha", "mu", "rho"))
    ll, log_pa, log_pd = data.loglik_grid(mu, rho)
    m = ll + _log_prior(r, alpha)[None, :]
    w = np.exp(m - m.max(axis=1, keepdims=True))
    w /= w.sum(axis=1, keepdims=True)
    kappa = mu + rho
    pi_a = rho / kappa
    frac = -np.expm1(-kappa * horizon) / kappa
    ia = pi_a * horizon + (mu / kappa) * frac
    idd = pi_a * (horizon - frac)
    per_lam = GRID[None, :] * (np.exp(log_pa) * ia + np.exp(log_pd) * idd)
    return (w * per_lam).sum(axis=1)


def simulate(
    n: int, r: float, alpha: float, mu: float, rho: float, births: float, end: float, seed: int
) -> pl.DataFrame:
    """Occasions (weeks) of ``n`` customers of the dormancy model born uniformly in [0, births]."""
    rng = np.random.default_rng(seed)
    lam = rng.gamma(r, 1.0 / alpha, n)
    birth = rng.uniform(0.0, births, n)
    ids, times = [], []
    for i in range(n):
        t, active = birth[i], True
        ids.append(i)
        times.append(t)
        while t <= end:
            if active:
                rate = lam[i] + mu
                t += rng.exponential(1.0 / rate)
                if t > end:
                    break
                if rng.random() < lam[i] / rate:
                    ids.append(i)
                    times.append(t)
                else:
                    active = False
            else:
                t += rng.exponential(1.0 / rho)
                active = True
    return pl.DataFrame({"customer_id": ids, "t": times})


def compare(events: pl.DataFrame, origin: float, end: float) -> dict[str, Any]:
    """BG/NBD and the dormancy model on the holdout and on the in-calibration back-test (the
    calibration's last third held back, as in holdout_diagnosis.py); the rule picks the model
    with the lower per-customer mean squared error in that back-test."""
    from holdout_diagnosis import counts_between, fit_forecast, summarize

    start = float(events.get_column("t").min())
    cut = origin - min(end - origin, (origin - start) / 3.0)
    out: dict[str, Any] = {}
    for tag, (lo, hi) in (("backtest", (cut, origin)), ("holdout", (origin, end))):
        data = Data(events, lo)
        summ = summarize(events, lo)
        actual = counts_between(events, data.ids, lo, hi)
        params = fit(data)
        dorm = expected(params, data, hi - lo)
        bg = fit_forecast("BG/NBD", summ, hi - lo)
        out[tag] = {
            "actual": float(actual.sum()),
            "dormancy_error": float(dorm.sum() / actual.sum() - 1.0),
            "bgnbd_error": float(bg.sum() / actual.sum() - 1.0),
            "dormancy_mse": float(np.mean((actual - dorm) ** 2)),
            "bgnbd_mse": float(np.mean((actual - bg) ** 2)),
            "params": {k: float(v) for k, v in params.items()},
        }
    pick = out["backtest"]["dormancy_mse"] < out["backtest"]["bgnbd_mse"]
    out["chosen"] = "dormancy" if pick else "BG/NBD"
    out["chosen_error"] = out["holdout"]["dormancy_error" if pick else "bgnbd_error"]
    return out


def main() -> None:
    import argparse
    import json
    import sys
    from datetime import date
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from holdout_diagnosis import DATA, read_occasions, simulate_bgnbd, weeks

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sims", type=int, default=20)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    cases: dict[str, Any] = {}
    end = weeks(date(1998, 6, 30))
    sample = read_occasions(DATA / "CDNOW_sample.txt", sample=True)
    cases["sample 1997-09-30"] = compare(sample, weeks(date(1997, 9, 30)), end)
    master = read_occasions(DATA / "CDNOW_master.txt", sample=False)
    for d in (date(1997, 6, 30), date(1997, 9, 30), date(1997, 12, 31), date(1998, 3, 31)):
        cases[f"master {d}"] = compare(master, weeks(d), end)
    for seed in range(args.sims):
        events = simulate_bgnbd(2357, 0.243, 4.414, 0.793, 2.426, 12.0, 78.0, seed)
        cases[f"simulated BG/NBD {seed}"] = compare(events, 39.0, 78.0)
    print(
        "| case | actual | BG/NBD | dormancy | ρ̂ /week | back-test MSE BG/NBD, dormancy | chosen |"
    )
    print("|---|---:|---:|---:|---:|---|---|")
    for name, c in cases.items():
        h, b = c["holdout"], c["backtest"]
        print(
            f"| {name} | {h['actual']:,.0f} | {h['bgnbd_error'] * 100:+.1f}% | "
            f"{h['dormancy_error'] * 100:+.1f}% | {h['params']['rho']:.4f} | "
            f"{b['bgnbd_mse']:.4f}, {b['dormancy_mse']:.4f} | {c['chosen']} "
            f"({c['chosen_error'] * 100:+.1f}%) |"
        )
    sims = [c for n, c in cases.items() if n.startswith("simulated")]
    if sims:
        for key in ("bgnbd_error", "dormancy_error"):
            errs = np.array([c["holdout"][key] for c in sims])
            print(f"simulations {key}: mean |error| {np.abs(errs).mean() * 100:.1f}%")
        errs = np.array([c["chosen_error"] for c in sims])
        print(
            f"simulations chosen: mean |error| {np.abs(errs).mean() * 100:.1f}%, dormancy chosen "
            f"in {sum(c['chosen'] == 'dormancy' for c in sims)} of {len(sims)}"
        )
    if args.json:
        args.json.write_text(json.dumps(cases, indent=1))


if __name__ == "__main__":
    main()
