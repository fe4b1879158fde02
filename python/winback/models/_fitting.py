"""Maximum likelihood over compressed sufficient statistics (docs/methods.md#fitting).

The optimiser works in log-parameters, so every parameter stays positive without bounds games:
L-BFGS-B (loose box on the logs, far from any sensible estimate) from one or more starts, then a
few Newton steps with the observed information to polish the optimum to machine precision. The
observed information comes from central differences of the *analytic* gradient, which is exact
to about 1e-8 relative — ample for standard errors.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import minimize

from winback._parallel import one_blas_thread
from winback.errors import WinbackFitError

__all__ = [
    "FitResult",
    "LogLikGrad",
    "LogLikGradHess",
    "maximise",
    "newton_maximise",
    "observed_information",
]

FloatArray = NDArray[np.float64]
#: ``f(params) -> (log-likelihood, gradient w.r.t. the natural parameters)``.
LogLikGrad = Callable[[FloatArray], tuple[float, FloatArray]]
#: ``f(params) -> (log-likelihood, gradient, Hessian)``, all w.r.t. the natural parameters.
LogLikGradHess = Callable[[FloatArray], tuple[float, FloatArray, FloatArray]]

#: Bounds on log-parameters: e^-23 ≈ 1e-10 to e^23 ≈ 1e10. An optimum on a bound is a boundary
#: solution, reported as such rather than as a number.
LOG_BOUND = 23.0
_NEWTON_STEPS = 25
#: A full (undamped) Newton step in log-parameters this small is taken without evaluating the
#: likelihood after it (see ``newton_maximise``).
_FINAL_STEP = 1e-6
_HESSIAN_STEP = 1e-5
#: Boundary ray (docs/methods.md#pareto-nbd-boundary): Newton stops on a ray where two
#: log-parameters run off together once the log-likelihood still to gain along it is below this
#: much per customer (a likelihood ratio to the supremum above exp(−1e-8 N)) ...
RAY_GAIN_PER_CUSTOMER = 1e-8
#: ... and the first of the two exceeds this (a guard: a step this far out on the ray is not a
#: finite optimum's neighbourhood; for Pareto/NBD's s, the dropout rates' CV 1/√s is below 10 %).
RAY_MIN_VALUE = 100.0
#: ... with the gradient across the ray below this per customer (log-parameters).
RAY_GRADIENT = 1e-8


@dataclass(frozen=True)
class FitResult:
    """The optimum of one fit."""

    params: FloatArray
    log_likelihood: float
    gradient_norm: float
    n_iter: int
    converged: bool
    message: str
    starts_tried: int
    #: Largest relative parameter difference between the best start and any other start that
    #: reached a log-likelihood within 1e-6 of it (0 with one start); large values flag a ridge.
    start_spread: float
    #: Hessian of the log-likelihood (natural parameters) at the optimum, when the optimiser had it.
    hessian: FloatArray | None = None
    #: True when Newton stopped on a boundary ray (``newton_maximise``'s ``ray``): the supremum
    #: lies at infinity along it and ``params`` is the point where less than
    #: ``RAY_GAIN_PER_CUSTOMER`` per customer was left to gain.
    boundary: bool = False


def _scaled_objective(
    loglik_grad: LogLikGrad, scale: float
) -> Callable[[FloatArray], tuple[float, FloatArray]]:
    """Negative log-likelihood per observation, and its gradient w.r.t. log-parameters."""

    def objective(log_params: FloatArray) -> tuple[float, FloatArray]:
        params = np.exp(log_params)
        value, grad = loglik_grad(params)
        if not math.isfinite(value) or not np.all(np.isfinite(grad)):
            # Infinite is an honest "not here" to L-BFGS-B; a NaN would poison its line search.
            return math.inf, np.zeros_like(log_params)
        return -value / scale, -(grad * params) / scale

    return objective


def _log_space_hessian(loglik_grad: LogLikGrad, log_params: FloatArray) -> FloatArray:
    """Hessian of the log-likelihood w.r.t. log-parameters, by central differences of the
    analytic gradient (symmetrised)."""
    k = log_params.size
    hessian = np.empty((k, k))
    for i in range(k):
        step = np.zeros(k)
        step[i] = _HESSIAN_STEP
        up = np.exp(log_params + step)
        down = np.exp(log_params - step)
        grad_up = loglik_grad(up)[1] * up
        grad_down = loglik_grad(down)[1] * down
        hessian[i] = (grad_up - grad_down) / (2 * _HESSIAN_STEP)
    return (hessian + hessian.T) / 2


def observed_information(loglik_grad: LogLikGrad, params: FloatArray) -> FloatArray:
    """Observed information (negative Hessian of the log-likelihood) w.r.t. natural parameters.

    At an optimum the log-space Hessian H_u relates to the natural one by H_θ = J⁻¹ H_u J⁻¹ with
    J = diag(θ), since the gradient term of the chain rule vanishes there.
    """
    log_params = np.log(params)
    hessian_u = _log_space_hessian(loglik_grad, log_params)
    inverse_jacobian = 1.0 / params
    return -(hessian_u * inverse_jacobian[:, None] * inverse_jacobian[None, :])


def _newton_polish(
    loglik_grad: LogLikGrad, log_params: FloatArray, value: float
) -> tuple[FloatArray, float, int]:
    """Damped Newton steps in log-space; each step is kept only when it raises the likelihood."""
    steps = 0
    for _ in range(_NEWTON_STEPS):
        params = np.exp(log_params)
        _, grad = loglik_grad(params)
        grad_u = grad * params
        if np.max(np.abs(grad_u)) < 1e-9 * max(1.0, abs(value)):
            break
        hessian_u = _log_space_hessian(loglik_grad, log_params)
        try:
            direction = np.linalg.solve(hessian_u, -grad_u)
        except np.linalg.LinAlgError:
            break
        if not np.all(np.isfinite(direction)) or float(direction @ grad_u) <= 0:
            break  # not an ascent direction: the quadratic model is not concave here
        improved = False
        for shrink in (1.0, 0.5, 0.25, 0.125):
            trial = np.clip(log_params + shrink * direction, -LOG_BOUND, LOG_BOUND)
            trial_value = loglik_grad(np.exp(trial))[0]
            if math.isfinite(trial_value) and trial_value >= value:
                log_params, value, improved = trial, trial_value, True
                break
        steps += 1
        if not improved:
            break
    return log_params, value, steps


def maximise(
    loglik_grad: LogLikGrad,
    starts: Sequence[Sequence[float]],
    *,
    n_observations: float,
    model: str,
    param_names: Sequence[str],
    max_iter: int = 2000,
    all_starts: bool = True,
) -> FitResult:
    """Maximise ``loglik_grad`` from each start; returns the best optimum, or raises
    :class:`WinbackFitError` when no start converges or the optimum lies on the boundary.
    With ``all_starts=False`` later starts are only tried when the earlier ones fail.

    ``n_observations`` scales the objective to a per-customer mean, which keeps L-BFGS-B's
    tolerances meaningful for any data size.
    """
    scale = max(float(n_observations), 1.0)
    objective = _scaled_objective(loglik_grad, scale)
    bounds = [(-LOG_BOUND, LOG_BOUND)] * len(param_names)
    results: list[tuple[float, FloatArray, int, bool, str]] = []
    for start in starts:
        x0 = np.log(np.asarray(start, dtype=np.float64))
        if not math.isfinite(objective(x0)[0]):
            continue
        with one_blas_thread():  # LAPACK on a few rows: OpenBLAS's threads only cost time
            res = minimize(
                objective,
                x0,
                jac=True,
                method="L-BFGS-B",
                bounds=bounds,
                options={"maxiter": max_iter, "ftol": 1e-15, "gtol": 1e-10, "maxcor": 20},
            )
        log_params = np.asarray(res.x, dtype=np.float64)
        value = loglik_grad(np.exp(log_params))[0]
        if not math.isfinite(value):
            continue
        log_params, value, polish_steps = _newton_polish(loglik_grad, log_params, value)
        results.append(
            (value, log_params, int(res.nit) + polish_steps, bool(res.success), str(res.message))
        )
        if not all_starts:
            grad = loglik_grad(np.exp(log_params))[1] * np.exp(log_params)
            if float(np.max(np.abs(grad)) / scale) < 1e-6 and max(abs(log_params)) < LOG_BOUND - 1:
                break
    if not results:
        raise WinbackFitError(
            f"{model}: the log-likelihood is not finite at any starting point; check the data "
            "(negative or non-finite frequency/recency/T) or pass initial_params="
        )
    results.sort(key=lambda item: -item[0])
    best_value, best_log, n_iter, success, message = results[0]
    params = np.exp(best_log)
    on_bound = [
        name for name, u in zip(param_names, best_log, strict=True) if abs(u) >= LOG_BOUND - 1e-6
    ]
    if on_bound:
        raise WinbackFitError(
            f"{model}: the likelihood is maximised at the boundary ({', '.join(on_bound)} → "
            f"{'∞' if best_log[param_names.index(on_bound[0])] > 0 else '0'}); the data do not "
            "identify this model's parameters. Fit on more customers or a longer calibration "
            "window, or try another model."
        )
    grad = loglik_grad(params)[1] * params
    gradient_norm = float(np.max(np.abs(grad)) / scale)
    converged = gradient_norm < 1e-6
    if not converged:
        raise WinbackFitError(
            f"{model} did not converge: {message} (per-customer gradient {gradient_norm:.2e} in "
            "log-parameters). Try initial_params= or rescale time (unit='W')."
        )
    spread = 0.0
    for value, log_params, *_ in results[1:]:
        if best_value - value < 1e-6 * max(1.0, abs(best_value)):
            spread = max(spread, float(np.max(np.abs(np.exp(log_params) / params - 1.0))))
    del success
    return FitResult(
        params=params,
        log_likelihood=float(best_value),
        gradient_norm=gradient_norm,
        n_iter=n_iter,
        converged=converged,
        message=message,
        starts_tried=len(results),
        start_spread=spread,
    )


def _log_space(
    params: FloatArray, grad: FloatArray, hess: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Gradient and Hessian w.r.t. u = ln θ: g_u = θ∘g, H_u = diag(θ) H diag(θ) + diag(θ∘g)."""
    grad_u = params * grad
    hess_u = hess * params[:, None] * params[None, :] + np.diag(grad_u)
    return grad_u, hess_u


def newton_maximise(
    loglik_grad_hess: LogLikGradHess,
    start: Sequence[float],
    *,
    n_observations: float,
    max_iter: int = 200,
    ray: tuple[int, int] | None = None,
) -> FitResult | None:
    """Levenberg-damped Newton ascent in log-parameters with exact Hessians.

    One pass over the data gives value, gradient and Hessian, and near the optimum each step
    doubles the correct digits, so a fit takes a dozen passes where a quasi-Newton method takes
    a hundred. Returns None when it cannot make progress (the caller falls back to L-BFGS-B).

    ``ray = (i, j)`` names two parameters whose joint run to infinity (θ_i, θ_j → ∞ with
    θ_i/θ_j fixed) is a boundary of the model (docs/methods.md#pareto-nbd-boundary). There the
    log-likelihood approaches its supremum like ℓ_∞ − c/θ_i, and Newton creeps out by about a
    factor e a step while the integrals lose accuracy; so after an accepted step that moves
    (ln θ_i, ln θ_j) outward by the same amount d with the other parameters settled, the gain
    still to come is estimated as Δℓ/(e^d − 1), and below ``RAY_GAIN_PER_CUSTOMER`` per customer
    the fit stops there with ``boundary=True``. It also stops (``boundary=True``) at a point out
    on the ray where the gradient across the ray is below ``RAY_GRADIENT`` per customer and both
    the slope and the curvature along it are below ``RAY_GAIN_PER_CUSTOMER`` (the c/θ_i left to
    gain, and −c/θ_i): a fit started there, from a sample's boundary point, has only the other
    parameters to settle, and the ray is flat to within the kernels' accuracy.
    """
    scale = max(float(n_observations), 1.0)
    log_params = np.log(np.asarray(start, dtype=np.float64))
    value, grad, hess = loglik_grad_hess(np.exp(log_params))
    if not math.isfinite(value):
        return None
    damping = 0.0
    for iteration in range(1, max_iter + 1):
        params = np.exp(log_params)
        grad_u, hess_u = _log_space(params, grad, hess)
        gradient_norm = float(np.max(np.abs(grad_u)) / scale)
        if gradient_norm < 1e-10:
            return FitResult(
                params,
                value,
                gradient_norm,
                iteration - 1,
                True,
                "Newton: gradient ≈ 0",
                1,
                0.0,
                hess,
            )
        if ray is not None and _flat_on_ray(ray, log_params, grad_u, hess_u, scale):
            return FitResult(
                params,
                value,
                gradient_norm,
                iteration - 1,
                True,
                "Newton: converged on the boundary ray",
                1,
                0.0,
                hess,
                boundary=True,
            )
        negative_hessian = -hess_u
        eigenvalues = np.linalg.eigvalsh(negative_hessian)
        floor = 1e-10 * max(1.0, float(np.max(np.abs(eigenvalues))))
        if eigenvalues.min() <= floor:
            damping = max(
                damping,
                floor - float(eigenvalues.min()) + 1e-3 * float(np.max(np.abs(eigenvalues))),
            )
        for _ in range(30):
            step = np.linalg.solve(negative_hessian + damping * np.eye(len(params)), grad_u)
            step_norm = float(np.max(np.abs(step)))
            if damping == 0.0 and step_norm < _FINAL_STEP:
                # Quadratic convergence: the error after this full Newton step is of the order
                # of step_norm² (< 1e-12 relative), so taking it needs no further pass over the
                # data. Value: the quadratic model's; Hessian: at the last evaluated point.
                final = np.exp(log_params + step)
                return FitResult(
                    final,
                    value + 0.5 * float(grad_u @ step),
                    gradient_norm,
                    iteration,
                    True,
                    f"Newton: final step < {_FINAL_STEP:g}",
                    1,
                    0.0,
                    hess,
                )
            if step_norm > 2.0:  # at most a factor e² per parameter and step
                step *= 2.0 / step_norm
            trial = log_params + step
            if np.all(np.abs(trial) < LOG_BOUND):
                trial_value, trial_grad, trial_hess = loglik_grad_hess(np.exp(trial))
                if math.isfinite(trial_value) and trial_value >= value - 1e-12 * abs(value):
                    if ray is not None and _on_ray(
                        ray,
                        np.asarray(trial, dtype=np.float64),
                        np.asarray(step, dtype=np.float64),
                        trial_value - value,
                        scale,
                    ):
                        return FitResult(
                            np.exp(trial),
                            trial_value,
                            float(np.max(np.abs(trial_grad * np.exp(trial))) / scale),
                            iteration,
                            True,
                            "Newton: stopped on the boundary ray",
                            1,
                            0.0,
                            trial_hess,
                            boundary=True,
                        )
                    log_params, value, grad, hess = trial, trial_value, trial_grad, trial_hess
                    damping *= 0.1 if damping > 1e-12 else 0.0
                    break
            damping = max(10.0 * damping, 1e-6 * max(1.0, float(np.max(np.abs(eigenvalues)))))
        else:
            return None
        if step_norm < 1e-14:
            break
    params = np.exp(log_params)
    grad_u, _ = _log_space(params, grad, hess)
    gradient_norm = float(np.max(np.abs(grad_u)) / scale)
    if gradient_norm < 1e-6:
        return FitResult(
            params, value, gradient_norm, max_iter, True, "Newton: step ≈ 0", 1, 0.0, hess
        )
    return None


def _on_ray(
    ray: tuple[int, int], log_params: FloatArray, step: FloatArray, gain: float, scale: float
) -> bool:
    """Whether an accepted Newton step shows the fit running out along ``ray`` with less than
    ``RAY_GAIN_PER_CUSTOMER`` per customer left to gain (see ``newton_maximise``)."""
    i, j = ray
    outward = float(step[i])
    if outward < 0.5 or abs(float(step[j]) - outward) > 0.05 * outward:
        return False
    others = np.delete(step, [i, j])
    if others.size and float(np.max(np.abs(others))) > 1e-3:
        return False
    if math.exp(float(log_params[i])) < RAY_MIN_VALUE:
        return False
    return max(gain, 0.0) / math.expm1(outward) < RAY_GAIN_PER_CUSTOMER * scale


def _flat_on_ray(
    ray: tuple[int, int],
    log_params: FloatArray,
    grad_u: FloatArray,
    hess_u: FloatArray,
    scale: float,
) -> bool:
    """Whether the fit sits out on ``ray``, settled across it and flat along it (slope and
    curvature both within ``RAY_GAIN_PER_CUSTOMER`` per customer; see ``newton_maximise``)."""
    i, j = ray
    if math.exp(float(log_params[i])) < RAY_MIN_VALUE:
        return False
    along = np.zeros_like(grad_u)
    along[i] = along[j] = 1.0
    slope = float(grad_u @ along)
    across = grad_u - 0.5 * slope * along
    curvature = float(along @ hess_u @ along)
    tolerance = RAY_GAIN_PER_CUSTOMER * scale
    return (
        float(np.max(np.abs(across))) < RAY_GRADIENT * scale
        and abs(slope) < tolerance
        and abs(curvature) < tolerance
    )
