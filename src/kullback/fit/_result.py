"""``FitResult``: the fitted distribution, its parameters and how the fit went."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import numpyro.distributions as dist

from ..measure import Estimate

__all__ = ["FitResult"]


def _fmt(value: Any) -> str:
    a = np.asarray(value)
    if a.ndim == 0:
        return f"{float(a):.6g}"
    return np.array2string(a, precision=4, separator=", ").replace("\n", "")


@dataclasses.dataclass(frozen=True)
class FitResult:
    """The result of ``kb.fit``.

    Attributes:
        q: the fitted numpyro distribution q_θ.
        params: its constrained parameters by name (NumPy arrays).
        direction: ``"forward"`` (min KL(p‖q)) or ``"reverse"`` (min KL(q‖p)).
        objective: the final objective: forward, the mean negative log-likelihood (data) or the
            cross-entropy H(p, q) (a distribution target); reverse, the negative ELBO on the
            optimiser's draws.
        history: the objective per iteration (index 0: the start), a NumPy array.
        converged: whether the stopping test passed (gradient norm for L-BFGS, no remaining
            trend for Adam; a closed form is converged).
        num_iterations: solver iterations (0 for a closed form).
        message: how it ended, and what to try when it did not converge.
        family: the family's name.
        method: ``"closed_form"``, ``"moment_matching"``, ``"lbfgs"``, ``"fixed_draws"`` or ``"adam"``.
        elbo: reverse fits: the ELBO E_q[log p̃ − log q] estimated on fresh draws (a
            :class:`kullback.Estimate` with its Monte Carlo stderr); None for forward fits.

    Example:
        >>> import numpy as np, numpyro.distributions as dist, kullback as kb
        >>> r = kb.fit(dist.Normal, np.array([1.0, 2.0, 3.0, 4.0]))
        >>> r.converged, float(r.params["loc"]), round(float(r.params["scale"]) ** 2, 4)
        (True, 2.5, 1.25)
    """

    q: dist.Distribution
    params: dict[str, np.ndarray]
    direction: str
    objective: float
    history: np.ndarray
    converged: bool
    num_iterations: int
    message: str
    family: str = ""
    method: str = ""
    elbo: Estimate | None = None

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={_fmt(v)}" for k, v in self.params.items())
        lines = [
            f"FitResult(direction={self.direction!r}, family={self.family}, method={self.method!r},",
            f"  converged={self.converged}, num_iterations={self.num_iterations}, objective={_fmt(self.objective)},",
            f"  params: {params},",
        ]
        if self.elbo is not None:
            lines.append(f"  elbo={_fmt(self.elbo.value)} ± {_fmt(self.elbo.stderr)},")
        lines.append(f"  message={self.message!r})")
        return "\n".join(lines)
