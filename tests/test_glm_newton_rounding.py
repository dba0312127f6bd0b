"""Newton's stopping rule at the rounding level of the objective.

Near the optimum the predicted decrease |Δ| = |gᵀd| ≈ gᵀH⁻¹g falls below the rounding of F
(≈ 100 eps |F|) while the gradient is still far above its own rounding: F cannot tell θ from
θ + d, and an Armijo test on F alone accepts steps of any length that leave F's last bit
unchanged (seen on 10⁶ × 50 rows at tol 1e-10: 100 such steps, never converged, the Dask fit
stopping elsewhere, 1.6e-9 apart). The rule: there the full step is taken when it lowers the
optimality violation. The criterion checked is the violation itself (the scaled gradient, which
scipy would compute alike), the optimum is Newton's own at tol 1e-14, and the steps are counted.
"""

import numpy as np

from kullback.glm._blocks import Blocks
from kullback.glm._newton import CONVERGED, _noise, gradient, newton, violation


def _problem(n=4000, p=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    eta = X @ rng.normal(size=p) * 0.7 + 0.2
    labels = (rng.uniform(size=n) < 1 / (1 + np.exp(-eta))).astype(int)
    blocks = Blocks(X, labels, np.full(n, 1.0 / n), np.zeros((n, 2)), num_classes=2, num_free=1,
                    reference=True, intercept=True)
    return blocks, np.zeros(p + 1), np.zeros(p + 1)


def test_steps_below_the_objectives_rounding_follow_the_gradient():
    blocks, r, lam = _problem()
    optimum = newton(blocks, r, lam, 0.0, np.zeros(5), 1e-14, 50, intercept=True)
    assert optimum.status == CONVERGED
    # a start 1e-9 from the optimum: the Newton decrement is ~1e-19, below F's rounding (~1e-14),
    # while the violation (~1e-9) is far above the tolerance asked for
    start = optimum.params + 1e-9 * np.array([1.0, -2.0, 0.5, 1.5, -1.0])
    _, _, RtX, R_sum, loss, _ = blocks.step(blocks.zero_eta, start, hessian=False)
    v_start = violation(gradient(RtX, R_sum, r, 0.0, start, True), start, lam, 1.0)
    assert v_start > 1e-10
    fit = newton(blocks, r, lam, 0.0, start, 1e-13, 50, intercept=True)
    assert fit.status == CONVERGED and fit.violation <= 1e-13
    assert fit.num_steps <= 2  # full Newton steps, not 50 steps of lengths the objective cannot see
    assert abs(fit.objective - optimum.objective) <= _noise(optimum.objective)
    np.testing.assert_allclose(fit.params, optimum.params, rtol=0, atol=1e-12)


def test_a_start_at_the_optimum_stops_converged_at_once():
    """Where even the gradient has nothing left to give, the loop stops converged: after a few
    full steps at most (taken while the gradient's own rounding happens to shrink), not at
    max_iter as an Armijo test on F alone would (it accepts every step there)."""
    blocks, r, lam = _problem(seed=1)
    optimum = newton(blocks, r, lam, 0.0, np.zeros(5), 1e-14, 50, intercept=True)
    again = newton(blocks, r, lam, 0.0, optimum.params, 0.0, 50, intercept=True)  # tol 0: never met by the test
    assert again.status == CONVERGED
    assert again.num_steps <= 8
    np.testing.assert_allclose(again.params, optimum.params, rtol=0, atol=1e-14)
