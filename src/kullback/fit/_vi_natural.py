"""Natural-gradient VI for Gaussian q = N(μ, Λ⁻¹): Newton steps on the ELBO from first derivatives.

At the optimum of the ELBO over Gaussians (stationarity in μ and Σ):

    E_q[∇ log p̃(x)] = 0,        Λ = −E_q[∇² log p̃(x)].

Stein's lemma gives the expected Hessian from gradients alone: with x = μ + S z, S Sᵀ = Σ,
E_q[∇² log p̃] = E[∇ log p̃(x) zᵀ] S⁻¹. Each iteration draws M base points z (antithetic pairs,
whitened so that their sample mean is 0 and their second moment I exactly: every quadratic, hence
every Gaussian target, is integrated exactly), evaluates ∇ log p̃ at x = μ + S z and forms

    ĝ = mean ∇ log p̃(x),     Ĥ = −sym(mean ∇ log p̃(x) zᵀ S⁻¹)      (diagonal: per coordinate)

and takes the natural-gradient step with step size ρ (the Bayesian learning rule for Gaussians;
ρ = 1 is Newton's method on the ELBO, exact in one step on a Gaussian target):

    Λ ← (1 − ρ) Λ + ρ Ĥ,         μ ← μ + ρ Λ⁻¹ ĝ.

Λ is kept through its Cholesky factor C (Λ = C Cᵀ, S = C⁻ᵀ, so S⁻¹ = Cᵀ needs no solve).

Two phases:
1. Newton: ρ starts at 1; a step whose ELBO estimate falls by more than three standard errors, or
   whose draws give a non-finite value or gradient, is undone and retried with ρ/4; ρ doubles
   (up to 1) after each accepted step; a step that would leave Λ indefinite is halved until Λ is
   positive definite. Done when the ELBO has gained no more than its noise over the last four
   iterations, or when the parameters stop moving (relative change ≤ 1e-9: converged, exactly, on a Gaussian target).
2. Averaging (Robbins–Monro, ρ_j = 1/(j + 1)): Λ becomes the running mean of the Ĥ's and μ moves
   by the averaged Newton steps, so the Monte Carlo noise of the estimates averages out. Stops when
   the standard error of the per-iteration Newton targets (μ + Ĥ⁻¹ĝ in units of q's standard
   deviations, and ½ log diag Ĥ) is ≤ ``tol`` (converged), or after ``max_iter`` iterations.

Gradient evaluations: M per iteration (undone iterations included).
"""

from __future__ import annotations

import functools
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from ._objectives import log_density_values
from ._progress import in_loop

__all__ = ["natural_core", "default_num_draws", "supports", "to_natural", "from_natural", "auto_method",
           "polish_num_draws", "free_parameters", "refine_num_draws", "REFINE_BELOW"]

_PHASE0_MAX = 60  # Newton iterations before averaging starts regardless
_MIN_AVERAGED = 4  # averaging iterations before the noise test may stop
_WINDOW = 4  # Newton iterations over which the ELBO must have gained nothing to start averaging
_EXACT = 1e-9  # relative parameter change that counts as exact convergence


def supports(family: Any) -> bool:
    """Whether ``family`` is a Gaussian family this method fits (diag, spherical or full)."""
    from ..families import Gaussian

    return type(family) is Gaussian


def free_parameters(family: Any) -> int:
    """The number of free parameters of the Gaussian family."""
    d = family.dim
    return {"full": d + d * (d + 1) // 2, "diag": 2 * d, "spherical": d + 1}[family.covariance]


def auto_method(family: Any) -> str:
    """``method="auto"`` for a Gaussian family: L-BFGS on a few whitened fixed draws while the family
    has at most 100 free parameters (robust on funnels and curved targets, cheap at that size),
    natural-gradient Newton steps above (a few iterations, whatever d, on near-Gaussian targets)."""
    return "fixed_draws" if free_parameters(family) <= 100 else "natural"


def polish_num_draws(family: Any) -> int:
    """Fixed draws for ``method="auto"``: 2d + 2 (the fewest that whiten), at least 24."""
    return max(24, 2 * family.dim + 2)


REFINE_BELOW = 1500  # gradient evaluations: a first fixed-draw solve cheaper than this is refined


def refine_num_draws(family: Any) -> int:
    """Fresh fixed draws of ``method="auto"``'s second solve: max(64, 4d + 4)."""
    return max(64, 4 * family.dim + 4)


def default_num_draws(family: Any) -> int:
    """M per iteration: 2d + 2 (the fewest draws that whiten jointly, so that a Gaussian target is
    exact) and at least 32; for a diagonal or spherical covariance above d = 64, 32 draws
    whitened per coordinate (exact when the target's coordinates are uncorrelated)."""
    if family.covariance == "full" or family.dim <= 64:
        return max(32, 2 * family.dim + 2)
    return 32


class _Point(NamedTuple):
    mu: jax.Array
    chol: jax.Array  # full: C with Λ = C Cᵀ (lower); diag/spherical: per-coordinate precision λ
    elbo: jax.Array
    se: jax.Array
    g: jax.Array  # ĝ
    h: jax.Array  # Ĥ (full: matrix; otherwise a vector)
    ok: jax.Array  # all values and gradients finite


def _draws(key: jax.Array, num: int, dim: int) -> jax.Array:
    """Antithetic base draws, whitened jointly when there are enough (M ≥ 2d + 2), else per coordinate."""
    half = jax.random.normal(key, (num // 2, dim))
    z = jnp.concatenate([half, -half])
    if num >= 2 * dim + 2:
        chol = jnp.linalg.cholesky(z.T @ z / num)
        return jax.scipy.linalg.solve_triangular(chol, z.T, lower=True).T
    return z / jnp.sqrt(jnp.mean(z**2, axis=0))


def _evaluate(cov: str, log_density: Any, target: Any, num: int, mu, chol, key) -> _Point:
    """ELBO estimate, ĝ and Ĥ from M fresh draws at q = N(μ, Λ⁻¹)."""
    dim = mu.shape[0]
    full = cov == "full"
    z = _draws(key, num, dim)
    if full:
        x = mu + jax.scipy.linalg.solve_triangular(chol, z.T, lower=True, trans="T").T  # S z, S = C⁻ᵀ
        log_det_s = -jnp.sum(jnp.log(jnp.diagonal(chol)))
    else:
        x = mu + z / jnp.sqrt(chol)
        log_det_s = -0.5 * jnp.sum(jnp.log(jnp.broadcast_to(chol, (dim,))))
    one = lambda v: log_density_values(log_density, target, v[None])[0]  # noqa: E731
    values, grads = jax.vmap(jax.value_and_grad(one))(x)
    return _stats(cov, mu, chol, z, values, grads, log_det_s)


def _stats(cov, mu, chol, z, values, grads, log_det_s) -> _Point:
    dim, num = mu.shape[0], z.shape[0]
    entropy = 0.5 * dim * (1.0 + math.log(2 * math.pi)) + log_det_s
    pairs = 0.5 * (values[: num // 2] + values[num // 2:])
    elbo = jnp.mean(values) + entropy
    se = jnp.std(pairs, ddof=1) / math.sqrt(num // 2)
    g = jnp.mean(grads, axis=0)
    if cov == "full":
        gz = grads.T @ z / num  # E[∇ log p̃ zᵀ] = E[∇²] S
        h = gz @ chol.T  # · S⁻¹ = Cᵀ
        h = -0.5 * (h + h.T)
    else:
        h = -jnp.mean(grads * z, axis=0) * jnp.sqrt(jnp.broadcast_to(chol, (dim,)))
        if cov == "spherical":
            h = jnp.full(dim, jnp.mean(h))
    ok = jnp.all(jnp.isfinite(values)) & jnp.all(jnp.isfinite(grads))
    return _Point(mu, chol, elbo, se, g, h, ok)


def _step(cov: str, point: _Point, rho: jax.Array):
    """(μ', factor', ρ actually used): the natural-gradient step, ρ halved until Λ' is positive definite."""

    def propose(r):
        if cov == "full":
            lam = point.chol @ point.chol.T
            new = jnp.linalg.cholesky((1.0 - r) * lam + r * point.h)
            return new, jnp.all(jnp.isfinite(new))
        new = (1.0 - r) * point.chol + r * point.h
        return new, jnp.all(new > 0) & jnp.all(jnp.isfinite(new))

    def cond(c):
        r, _, good, tries = c
        return ~good & (tries < 40)

    def body(c):
        r, _, _, tries = c
        r = 0.5 * r
        new, good = propose(r)
        return r, new, good, tries + 1

    new, good = propose(rho)
    rho, new, good, _ = jax.lax.while_loop(cond, body, (rho, new, good, 0))
    new = jnp.where(good, new, point.chol)
    if cov == "full":
        step = jax.scipy.linalg.cho_solve((new, True), point.g)
    else:
        step = point.g / new
    return point.mu + rho * step, new, rho


def _newton_target(cov: str, point: _Point):
    """(μ + Ĥ⁻¹ĝ in units of q's sd, ½ log diag Ĥ): the per-iteration quantities whose noise the
    averaging phase measures (NaN where Ĥ is not positive definite)."""
    if cov == "full":
        c = jnp.linalg.cholesky(point.h)
        t = point.mu + jax.scipy.linalg.cho_solve((c, True), point.g)
        prec = jnp.sum(point.chol**2, axis=1)  # diag Λ = row sums of C²
        return jnp.concatenate([t * jnp.sqrt(prec), 0.5 * jnp.log(jnp.diagonal(point.h))])
    prec = jnp.broadcast_to(point.chol, point.mu.shape)
    h = jnp.broadcast_to(point.h, point.mu.shape)
    return jnp.concatenate([(point.mu + point.g / h) * jnp.sqrt(prec), 0.5 * jnp.log(h)])


def _change(cov: str, a: _Point, mu, chol) -> jax.Array:
    """Largest relative move: |Δμ| in sd units and |Δ log diag factor|."""
    if cov == "full":
        prec = jnp.sum(a.chol**2, axis=1)
        da = jnp.abs(jnp.log(jnp.diagonal(chol)) - jnp.log(jnp.diagonal(a.chol)))
        off = jnp.max(jnp.abs(chol - a.chol)) / jnp.max(jnp.abs(jnp.diagonal(a.chol)))
        da = jnp.maximum(jnp.max(da), off)
    else:
        prec = jnp.broadcast_to(a.chol, a.mu.shape)
        da = jnp.max(jnp.abs(jnp.log(chol) - jnp.log(a.chol)))
    return jnp.maximum(jnp.max(jnp.abs(mu - a.mu) * jnp.sqrt(prec)), da)


@functools.partial(jax.jit, static_argnames=("cov", "log_density", "num", "capacity", "report"))
def natural_core(cov, log_density, num, mu0, chol0, key, target, tol, max_iter, *, capacity=512, report=False):
    """The jitted two-phase loop (vmappable over starts). ``chol0``: C (full) or λ (diag, spherical).

    Returns ``(mu, chol, history, iterations, converged, evaluations, skipped, noise, averaged,
    failed)``;
    ``history`` holds the accepted ELBO estimates, ``noise`` the last standard error of the Newton
    targets (in sd units), ``averaged`` the number of averaging iterations, ``failed`` whether the
    start's draws already gave a non-finite value or gradient.
    """
    evaluate = functools.partial(_evaluate, cov, log_density, target, num)
    key, sub = jax.random.split(key)
    first = evaluate(mu0, chol0, sub)
    width = _newton_target(cov, first).shape[0]
    zeros = jnp.zeros(width, dtype=mu0.dtype)
    history = jnp.full(capacity, jnp.nan, dtype=mu0.dtype).at[0].set(first.elbo)
    ses = jnp.zeros(capacity, dtype=mu0.dtype).at[0].set(first.se)
    # it, rho, phase, j, mean, m2, evals, skipped, done, conv, noise, ELBO and stderr histories
    carry = (first, key, 0, jnp.asarray(1.0, mu0.dtype), 0, 0, zeros, zeros, 1, 0, ~first.ok, False,
             jnp.asarray(jnp.inf, mu0.dtype), history, ses)

    def cond(c):
        it, done = c[2], c[10]
        return (it < max_iter) & ~done

    def body(c):
        point, key, it, rho, phase, j, mean, m2, evals, skipped, _, _, noise, history, ses = c
        key, sub = jax.random.split(key)
        step_rho = jnp.where(phase == 0, rho, 1.0 / (j + 2.0))
        mu, chol, used = _step(cov, point, step_rho)
        new = evaluate(mu, chol, sub)
        drop = point.elbo - new.elbo
        tolerance = 3.0 * jnp.sqrt(point.se**2 + new.se**2) + 1e-12 * jnp.abs(point.elbo)
        accept = new.ok & jnp.isfinite(new.elbo) & ((drop <= tolerance) | (phase == 1))
        exact = accept & (_change(cov, point, mu, chol) <= _EXACT)
        point = jax.tree.map(lambda a, b: jnp.where(accept, a, b), new, point)
        skipped = skipped + (~accept).astype(int)
        history = history.at[it + 1].set(point.elbo)
        in_loop(report, it + 1, -point.elbo)  # the objective: the negative ELBO
        ses = ses.at[it + 1].set(point.se)
        # Newton phase: step control; averaging starts once the ELBO has gained nothing beyond its
        # noise over the last _WINDOW iterations (one noisy step cannot end the phase).
        rho = jnp.where(phase == 0, jnp.where(accept, jnp.minimum(1.0, 2.0 * used), 0.25 * used), rho)
        back = jnp.maximum(it + 1 - _WINDOW, 0)
        flat = (it + 1 >= _WINDOW) & (point.elbo - history[back] <= 3.0 * jnp.sqrt(point.se**2 + ses[back]**2))
        to_avg = (phase == 0) & ((accept & flat) | (it + 1 >= _PHASE0_MAX))
        # Averaging phase: Welford statistics of the Newton targets of accepted points.
        t = _newton_target(cov, point)
        count = (phase == 1) & accept & jnp.all(jnp.isfinite(t))
        j_new = j + count.astype(int)
        delta = t - mean
        mean = jnp.where(count, mean + delta / jnp.maximum(j_new, 1), mean)
        m2 = jnp.where(count, m2 + delta * (t - mean), m2)
        noise = jnp.where(j_new >= 2, jnp.sqrt(jnp.max(m2) / jnp.maximum(j_new - 1, 1) / jnp.maximum(j_new, 1)),
                          jnp.inf)
        done_avg = (phase == 1) & (j_new >= _MIN_AVERAGED) & (noise <= tol)
        stalled = (phase == 0) & (rho < 1e-6)
        phase = jnp.where(to_avg, 1, phase)
        return (point, key, it + 1, rho, phase, j_new, mean, m2, evals + 1, skipped,
                exact | done_avg | stalled, exact | done_avg, noise, history, ses)

    out = jax.lax.while_loop(cond, body, carry)
    point, _, it, rho, phase, j, _, _, evals, skipped, _, conv, noise, history, _ = out
    # The last evaluated point's statistics, used once more (no new draws): the final step.
    mu, chol, _ = _step(cov, point, jnp.where(phase == 1, 1.0 / (j + 2.0), rho))
    return mu, chol, history, it, conv, evals * num, skipped, noise, j, ~first.ok


@functools.partial(jax.jit, static_argnums=0)
def to_natural(family: Any, params: Any) -> tuple[jax.Array, jax.Array]:
    """(μ, C or λ) of the family's unconstrained parameters."""
    values = family.constrained(params)
    if family.covariance == "full":
        tril = values["scale_tril"]
        inv = jax.scipy.linalg.solve_triangular(tril, jnp.eye(family.dim, dtype=tril.dtype), lower=True)
        return values["loc"], jnp.linalg.cholesky(inv.T @ inv)
    return values["loc"], jnp.broadcast_to(values["scale"] ** -2.0, (family.dim,))


@functools.partial(jax.jit, static_argnums=0)
def from_natural(family: Any, mu: jax.Array, chol: jax.Array) -> Any:
    """The family's unconstrained parameters of N(μ, Λ⁻¹)."""
    if family.covariance == "full":
        cov = jax.scipy.linalg.cho_solve((chol, True), jnp.eye(family.dim, dtype=chol.dtype))
        return family.from_constrained({"loc": mu, "scale_tril": jnp.linalg.cholesky(0.5 * (cov + cov.T))})
    return family.from_constrained({"loc": mu, "scale": chol**-0.5})
