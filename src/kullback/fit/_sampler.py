"""What ``FitResult.draws`` runs for a reverse fit, as a value that pickles.

A :class:`Sampler` holds q (in the space it was fitted in), the target's pieces that map its draws
back (a bijection T for a constrained distribution, a postprocess for a model or a pytree) and, for
``resample=True``, the target's log density. Its jitted draw program is built on the first call and
is not part of its state, so a pickled result draws again after loading (compiling once).

What pickle cannot store by name (a function defined inside another function, a lambda, a
closure) is handled by what it is needed for:

- the map to the target's space (postprocess): without it the draws would silently change
  meaning, so ``pickle.dumps`` raises an error that says which object and what to do;
- the log density, needed only by ``draws(..., resample=True)``: it is left out, and resampling
  on the loaded result raises an error that says why (plain draws, means and summaries work).
  A numpyro model's postprocess (:class:`ModelSites`) brings its own exact log density.
"""

from __future__ import annotations

import functools
import pickle
from typing import Any, Callable

import jax

from ._diagnostics import psis
from ._objectives import log_density_values

__all__ = ["Sampler", "ModelSites"]


class ModelSites:
    """Flat unconstrained draws ``(num, d)`` -> a numpyro model's constrained sites by name.

    numpyro's ``constrain_fn`` (deterministic sites included) at ``unravel(x)``; ``unravel``
    splits x into the latent sites' unconstrained arrays in ``jax.tree`` order, as
    ``ravel_pytree(example)`` does. Pickles when the model does (a module-level function) and
    its arguments do.

    Args:
        model: the numpyro model.
        args, kwargs: its ``model_args`` and ``model_kwargs`` (the unpadded data).
        example: the latent sites' unconstrained values by name (shapes and dtypes are what counts).
    """

    def __init__(self, model: Callable, args: tuple, kwargs: dict, example: dict) -> None:
        from ._unravel import Unravel

        self.model, self.args, self.kwargs = model, tuple(args), dict(kwargs)
        self.unravel = Unravel(example)

    def __call__(self, x: jax.Array) -> dict:
        from numpyro.infer.util import constrain_fn

        def one(v):
            return constrain_fn(self.model, self.args, self.kwargs, self.unravel(v), return_deterministic=True)

        return jax.vmap(one)(x)

    def log_density(self, x: jax.Array) -> jax.Array:
        """log p̃(x) = −(the model's potential energy) at one flat unconstrained point x, shape ``(d,)``."""
        from numpyro.infer.util import potential_energy

        return -potential_energy(self.model, self.args, self.kwargs, self.unravel(x))


def _draw(log_density, transform, key, num, resample, q, p):
    if not resample:
        x = q.sample(key, (num,))
    else:
        k_x, k_pick = jax.random.split(key)
        pool = max(4 * num, 1000)
        x = q.sample(k_x, (pool,))
        log_w, _ = psis(log_density_values(log_density, p, x) - q.log_prob(x))
        x = x[jax.random.categorical(k_pick, log_w, shape=(num,))]
    if transform is not None:
        return transform(x)
    return x


def _name(obj: Any) -> str:
    inner = getattr(obj, "model", obj)
    return getattr(inner, "__qualname__", None) or type(inner).__qualname__


class Sampler:
    """``(key, num, resample) -> draws`` in the target's original space (see the module doc).

    Args:
        q: the fitted distribution in the space of the fit (R^d, or unconstrained for a
            constrained target).
        p: the target distribution on that space (None for a log density).
        log_density: the target's log density on that space (None for a distribution).
        transform: T, mapping draws of q to the target's support (constrained targets), or None.
        postprocess: flat draws -> the target's structure (model sites, a pytree), or None.
    """

    def __init__(self, q: Any, p: Any, log_density: Callable | None, transform: Any, postprocess: Callable | None):
        self.q, self.p, self.log_density = q, p, log_density
        self.transform, self.postprocess = transform, postprocess
        self._why_no_log_density: str | None = None
        self._program: Callable | None = None

    def __call__(self, key: Any, num: int, resample: bool) -> Any:
        from ._keys import as_key

        if resample and self._why_no_log_density is not None:
            raise ValueError(self._why_no_log_density)
        if self._program is None:  # one program per sampler, as in the fit
            self._program = jax.jit(functools.partial(_draw, self.log_density, self.transform), static_argnums=(1, 2))
        x = self._program(as_key(key), int(num), bool(resample), self.q, self.p)
        return self.postprocess(x) if self.postprocess is not None else x

    def __getstate__(self) -> dict:
        state = {"q": self.q, "p": self.p, "transform": self.transform, "postprocess": None, "log_density": None,
                 "why": self._why_no_log_density}
        if self.postprocess is not None:
            try:
                state["postprocess"] = pickle.dumps(self.postprocess, protocol=pickle.HIGHEST_PROTOCOL)
            except Exception as err:  # noqa: BLE001 - pickle raises several kinds; all mean the same here
                if isinstance(self.postprocess, ModelSites):
                    advice = ("Pickle stores functions by name: define the model at module level (not inside a "
                              "function, not a lambda)")
                    what = f"the numpyro model {_name(self.postprocess)!r}"
                else:
                    advice, what = "Make it a module-level function or class", repr(_name(self.postprocess))
                raise pickle.PicklingError(
                    f"Cannot pickle this reverse fit: draws() maps q's draws to the target's sites through {what}, "
                    f"which pickle cannot store ({type(err).__name__}: {err}). {advice}; or keep r.q and r.params, "
                    "which pickle on their own."
                ) from err
        if self.log_density is not None:
            try:
                state["log_density"] = pickle.dumps(self.log_density, protocol=pickle.HIGHEST_PROTOCOL)
            except Exception:  # noqa: BLE001 - only resampling needs it (module doc)
                if not isinstance(self.postprocess, ModelSites):
                    state["why"] = (
                        f"draws(..., resample=True) needs the target's log density, and {_name(self.log_density)!r} "
                        "could not be pickled with this result (a lambda or a function defined inside another "
                        "function). Plain draws work; for resampling, refit, or define the log density at module level."
                    )
        return state

    def __setstate__(self, state: dict) -> None:
        loads = lambda b: None if b is None else pickle.loads(b)  # noqa: E731
        self.q, self.p, self.transform = state["q"], state["p"], state["transform"]
        self.postprocess = loads(state["postprocess"])
        self.log_density = loads(state["log_density"])
        if self.log_density is None and isinstance(self.postprocess, ModelSites) and self.p is None:
            self.log_density = self.postprocess.log_density  # the exact (unpadded) model density
        self._why_no_log_density = state["why"]
        self._program = None
