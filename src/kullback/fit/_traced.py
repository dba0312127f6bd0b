"""A log density traced once to a program, its closed-over arrays lifted out as arguments.

A user's log density is a new closure on every call; two closures of the same code and constant
shapes trace to the same program, so jitted solvers keyed by :class:`TracedLogDensity` compile
once for both (the constants' values are arguments).
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["TracedLogDensity", "trace_log_density"]

_PLAIN = (int, float, complex, bool, str, bytes, type(None), np.dtype, np.generic)


def _program_key(jaxpr: Any, refs: list) -> tuple:
    """Exact literal values and the objects behind non-printable parameters (custom derivative
    rules, meshes), in equation order, sub-programs included: with ``str(jaxpr)`` a key that two
    programs share only when they compute the same function of their inputs and constants."""
    from jax.extend import core as jcore

    literals = []

    def walk(j):
        for eqn in j.eqns:
            literals.extend(np.asarray(v.val).tobytes() + str(np.asarray(v.val).dtype).encode()
                            for v in eqn.invars if isinstance(v, jcore.Literal))
            for value in eqn.params.values():
                for sub in value if isinstance(value, (tuple, list)) else (value,):
                    if isinstance(sub, jcore.ClosedJaxpr):
                        walk(sub.jaxpr)
                        refs.extend(sub.consts)  # constants baked into a sub-program: kept by identity
                    elif isinstance(sub, jcore.Jaxpr):
                        walk(sub)
                    elif not isinstance(sub, _PLAIN):
                        refs.append(sub)

    walk(jaxpr)
    return tuple(literals)


class TracedLogDensity:
    """A log density traced once to a jaxpr, its closed-over arrays lifted out as arguments.

    Two closures that trace to the same program (same code, literals and constant shapes; the
    constants' values may differ) compare equal and hash alike, so jitted solvers that take this
    object as a static argument and the constants as traced ones compile once for both: a user's
    log density is a new closure on every call. Objects the program refers to but does not print
    (custom derivative rules, constants of nested programs) are compared by identity and kept
    alive here, so an address cannot be reused by another object.
    """

    __slots__ = ("jaxpr", "_text", "_literals", "_refs", "_hash")

    def __init__(self, closed: Any) -> None:
        self.jaxpr = closed.jaxpr
        refs: list = []
        self._literals = _program_key(self.jaxpr, refs)
        self._refs = tuple(refs)
        self._text = str(self.jaxpr)
        self._hash = hash((self._text, self._literals, tuple(id(r) for r in self._refs)))

    def bind(self, consts: Any) -> Callable:
        """x -> log p̃(x) with the constants ``consts`` (traced values inside a jitted program)."""
        from jax.extend import core as jcore

        jaxpr = self.jaxpr

        def log_density(x):
            return jcore.jaxpr_as_fun(jcore.ClosedJaxpr(jaxpr, list(consts)))(x)[0]

        return log_density

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, TracedLogDensity) and self._hash == other._hash and self._text == other._text
                and self._literals == other._literals and len(self._refs) == len(other._refs)
                and all(a is b for a, b in zip(self._refs, other._refs)))

    def __hash__(self) -> int:
        return self._hash


def trace_log_density(log_density: Callable, event_shape: tuple) -> tuple[TracedLogDensity, list, Any]:
    """(the traced log density, its constants as device arrays, the output's shape and dtype)."""
    closed = jax.make_jaxpr(log_density)(jax.ShapeDtypeStruct(tuple(event_shape), jnp.result_type(float)))
    out = closed.out_avals
    consts = [c if isinstance(c, jax.Array) else np.asarray(c) for c in closed.consts]  # no eager copy
    return TracedLogDensity(closed), consts, (out[0] if len(out) == 1 else None)
