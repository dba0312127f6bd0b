"""A numpyro model as a reverse-fit target, its data rows padded to a bucket of sizes.

The model's potential energy (−log joint on the flattened unconstrained latent sites) is the log
density a reverse fit maximises. It is built by tracing alone (``jax.eval_shape``), never by
running the model eagerly: numpyro's ``initialize_model`` runs some forty small programs, each
compiled again for every new data size (1.4 s of a refit).

Data rows. A plate whose sample sites are all observed (a likelihood over rows) and whose size n
is the leading length of some model arguments is a data plate. Those arguments are padded to
``bucket_size(n)`` rows with copies of their first row, and the observed sites in the plate are
masked (``log_prob`` 0 on the padded rows, numpyro's ``MaskedDistribution``), so the compiled
fit is reused for every n of the same bucket. The padding is kept only when the padded model is
the same function: its latent sites have the same shapes and its log density equals the unpadded
one at a test point (a model that reads ``len(x)`` or ``x.mean()`` outside the plate is fitted at
its exact size). Models with discrete latent sites, subsampled plates or ``numpyro.param`` sites
go through ``initialize_model`` as before.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from ._buckets import bucket_size

__all__ = ["model_log_density"]


def _probe(model: Callable, args: tuple, kwargs: dict) -> dict | None:
    """The model's sites by tracing (no compile): latent sites' unconstrained shapes and dtypes,
    plates with their sizes, and for each plate whether only observed sites sit in it. None for a
    model this path does not take (discrete latents, ``param`` sites, subsampled plates)."""
    from numpyro import handlers
    from numpyro.distributions.transforms import biject_to

    found: dict = {}

    def run():
        tr = handlers.trace(handlers.seed(model, rng_seed=0)).get_trace(*args, **kwargs)
        latent, plates, impure, other = {}, {}, set(), False
        for name, site in tr.items():
            if site["type"] == "plate":
                size, subsample = site["args"][0], site["args"][1]
                other |= subsample is not None and subsample != size
                plates[name] = int(size)
            elif site["type"] == "param":
                other = True
            elif site["type"] == "sample":
                frames = [f.name for f in site["cond_indep_stack"]]
                if site["is_observed"]:
                    continue
                if site["fn"].support.is_discrete or site["infer"].get("enumerate"):
                    other = True
                    continue
                impure.update(frames)
                shape = biject_to(site["fn"].support).inverse_shape(jnp.shape(site["value"]))
                latent[name] = (tuple(shape), jnp.result_type(site["value"]))
        found.update(latent=latent, plates=plates, impure=impure, other=other)
        return jnp.zeros(())

    try:
        jax.eval_shape(run)
    except Exception:  # noqa: BLE001 - numpyro's own path reports what is wrong with the model
        return None
    return None if found["other"] or not found["latent"] else found


def _rows(value: Any, n: int) -> bool:
    return isinstance(value, (np.ndarray, jax.Array)) and value.ndim >= 1 and value.shape[0] == n


def _pad(value: Any, n: int, size: int) -> Any:
    if not _rows(value, n):
        return value
    host = np.asarray(value)
    return np.concatenate([host, np.broadcast_to(host[:1], (size - n, *host.shape[1:]))])


def _masked(model: Callable, plates: frozenset, mask: np.ndarray) -> Callable:
    """``model`` with the observed sites of ``plates`` masked to the first rows along each plate's dim."""
    from numpyro.primitives import Messenger

    class RowMask(Messenger):
        def process_message(self, msg):
            if msg["type"] != "sample" or not msg["is_observed"]:
                return
            for frame in msg["cond_indep_stack"]:
                if frame.name in plates:
                    m = jnp.asarray(mask).reshape((-1,) + (1,) * (-frame.dim - 1))
                    msg["fn"] = msg["fn"].mask(m)
                    return

    return functools.wraps(model)(lambda *a, **k: RowMask(model)(*a, **k))


def _same_at(padded: Callable, exact: Callable, x: np.ndarray) -> bool:
    """Whether the padded and the exact log density agree at x (one small compile per exact size)."""
    from .._compile import call_small
    from ._traced import trace_log_density

    values = []
    for f in (padded, exact):
        traced, consts, _ = trace_log_density(f, x.shape)
        values.append(np.asarray(call_small(_evaluate, consts, x, traced=traced)))
    a, b = values
    tol = 1e-9 if a.dtype == np.float64 else 2e-5
    return bool(np.isfinite(a) and abs(a - b) <= tol * (1.0 + abs(a)))


@functools.partial(jax.jit, static_argnames=("traced",))
def _evaluate(consts, x, *, traced):
    return traced.bind(consts)(x)


def model_log_density(model: Callable, args: tuple, kwargs: dict) -> tuple[Callable, Callable, tuple] | None:
    """(x -> log p̃(x) on the flat unconstrained sites, flat draws -> constrained sites by name,
    the event shape), data rows padded to a bucket where that leaves the model unchanged (module
    doc); None for a model that needs numpyro's ``initialize_model``."""
    from numpyro.infer.util import potential_energy

    found = _probe(model, args, kwargs)
    if found is None:
        return None
    example = {name: jnp.zeros(shape, dtype) for name, (shape, dtype) in found["latent"].items()}
    flat, unravel = ravel_pytree(example)

    def density(m, a, k):
        return lambda x: -potential_energy(m, a, k, unravel(x))

    exact = density(model, args, kwargs)
    log_density = exact
    leaves = [v for v in (*args, *kwargs.values())]
    data = {name: n for name, n in found["plates"].items()
            if name not in found["impure"] and any(_rows(v, n) for v in leaves)}
    if data and len(set(data.values())) == 1:
        n = next(iter(data.values()))
        size = bucket_size(n)
        mask = np.arange(size) < n
        p_args = tuple(_pad(v, n, size) for v in args)
        p_kwargs = {k: _pad(v, n, size) for k, v in kwargs.items()}
        masked = _masked(model, frozenset(data), mask)
        again = _probe(masked, p_args, p_kwargs)
        if (again is not None and again["latent"] == found["latent"]
                and all(again["plates"].get(name) == size for name in data)):
            padded = density(masked, p_args, p_kwargs)
            x = np.asarray(0.1 * np.sin(np.arange(1, flat.size + 1)), dtype=flat.dtype)
            if _same_at(padded, exact, x):
                log_density = padded

    from ._sampler import ModelSites

    return log_density, ModelSites(model, args, kwargs, example), tuple(flat.shape)
