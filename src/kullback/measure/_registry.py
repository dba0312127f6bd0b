"""The closed-form registry: per-pair KL functions and per-type entropies, dispatched on types.

A KL rule is registered for a pair of classes ``(type_p, type_q)`` and applies to every pair of
instances of those classes or of their subclasses. When several rules apply, the most specific
is tried first: the smallest total distance, in method resolution order, between the argument
types and the registered types (ties: the more specific ``p`` first). A rule may carry a
``when(p, q)`` predicate (for example "the base of this ``Independent`` is a ``Normal``"); a rule
whose predicate is false is skipped and the next one is tried. No applicable rule raises
:class:`kullback.NoClosedFormError`, whose message names the pair and points to
:func:`kullback.estimate_kl`.

Rules receive distributions and return ``jax.Array`` values over the broadcast batch shape;
they must be pure JAX (jit, grad and vmap safe). The predicates run in Python on the
distribution objects (types and static shapes only).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax

from .._errors import NoClosedFormError

__all__ = [
    "register_kl",
    "register_entropy",
    "kl_rules",
    "entropy_rules",
    "describe",
    "dispatch_kl",
    "dispatch_entropy",
]


class _Rule(NamedTuple):
    types: tuple[type, ...]
    fn: Callable[..., jax.Array]
    when: Callable[..., bool] | None


_KL_RULES: dict[tuple[type, type], list[_Rule]] = {}
_ENTROPY_RULES: dict[type, list[_Rule]] = {}


def _check_types(*types: Any) -> None:
    for t in types:
        if not isinstance(t, type):
            raise TypeError(f"Expected a class to register a closed form for; got {t!r}.")


def register_kl(
    type_p: type, type_q: type, *, when: Callable[[Any, Any], bool] | None = None
) -> Callable[[Callable[..., jax.Array]], Callable[..., jax.Array]]:
    """Decorator: register ``fn(p, q) -> KL(p‖q)`` for instances of ``type_p`` and ``type_q``.

    Args:
        type_p, type_q: distribution classes; subclasses dispatch to the rule too.
        when: optional predicate ``when(p, q) -> bool`` (Python, on types and static shapes);
            the rule is skipped where it is false.

    Returns:
        The decorator; it returns ``fn`` unchanged.

    Example:
        >>> import jax.numpy as jnp
        >>> import numpyro.distributions as dist
        >>> from kullback.measure._registry import register_kl, dispatch_kl
        >>> class Point(dist.Normal):  # a toy subclass, to show the dispatch
        ...     pass
        >>> @register_kl(Point, Point)
        ... def _kl_point(p, q):
        ...     return jnp.zeros(())
        >>> float(dispatch_kl(Point(0.0, 1.0), Point(1.0, 1.0)))
        0.0
    """
    _check_types(type_p, type_q)

    def decorator(fn: Callable[..., jax.Array]) -> Callable[..., jax.Array]:
        _KL_RULES.setdefault((type_p, type_q), []).append(_Rule((type_p, type_q), fn, when))
        _kl_candidates.cache_clear()
        return fn

    return decorator


def register_entropy(
    type_p: type, *, when: Callable[[Any], bool] | None = None
) -> Callable[[Callable[..., jax.Array]], Callable[..., jax.Array]]:
    """Decorator: register ``fn(p) -> H(p)`` for instances of ``type_p`` (and subclasses).

    Args:
        type_p: a distribution class.
        when: optional predicate ``when(p) -> bool``; the rule is skipped where it is false.

    Returns:
        The decorator; it returns ``fn`` unchanged.
    """
    _check_types(type_p)

    def decorator(fn: Callable[..., jax.Array]) -> Callable[..., jax.Array]:
        _ENTROPY_RULES.setdefault(type_p, []).append(_Rule((type_p,), fn, when))
        _entropy_candidates.cache_clear()
        return fn

    return decorator


def kl_rules() -> list[tuple[type, type]]:
    """The registered KL pairs ``(type_p, type_q)``, in registration order."""
    return list(_KL_RULES)


def entropy_rules() -> list[type]:
    """The types with a registered entropy, in registration order."""
    return list(_ENTROPY_RULES)


@functools.lru_cache(maxsize=1024)
def _kl_candidates(cls_p: type, cls_q: type) -> tuple[_Rule, ...]:
    mro_p, mro_q = cls_p.__mro__, cls_q.__mro__
    ranked = []
    for (tp, tq), rules in _KL_RULES.items():
        if tp in mro_p and tq in mro_q:
            i, j = mro_p.index(tp), mro_q.index(tq)
            ranked.extend(((i + j, i), k, rule) for k, rule in enumerate(rules))
    ranked.sort(key=lambda item: (item[0], -item[1]))  # later registrations win among equals
    return tuple(rule for _, _, rule in ranked)


@functools.lru_cache(maxsize=1024)
def _entropy_candidates(cls_p: type) -> tuple[_Rule, ...]:
    mro = cls_p.__mro__
    ranked = []
    for tp, rules in _ENTROPY_RULES.items():
        if tp in mro:
            ranked.extend((mro.index(tp), k, rule) for k, rule in enumerate(rules))
    ranked.sort(key=lambda item: (item[0], -item[1]))
    return tuple(rule for _, _, rule in ranked)


def describe(d: Any) -> str:
    """A short name for a distribution: its class, with the base of wrappers spelled out."""
    name = type(d).__name__
    base = getattr(d, "base_dist", None)
    if base is not None:
        extra = getattr(d, "reinterpreted_batch_ndims", None)
        inner = describe(base) + ("" if extra is None else f", {extra}")
        return f"{name}({inner})"
    return name


def dispatch_kl(p: Any, q: Any) -> jax.Array:
    """KL(p‖q) by the most specific applicable rule; :class:`NoClosedFormError` if none applies."""
    for rule in _kl_candidates(type(p), type(q)):
        if rule.when is None or rule.when(p, q):
            return rule.fn(p, q)
    raise NoClosedFormError(
        f"No closed-form KL is registered for p of type {describe(p)} and q of type "
        f"{describe(q)}. Use kb.estimate_kl(p, q) for an estimate with an error "
        "(quadrature or Monte Carlo)."
    )


def dispatch_entropy(p: Any) -> jax.Array | None:
    """H(p) by the most specific applicable rule, or ``None`` where no rule applies."""
    for rule in _entropy_candidates(type(p)):
        if rule.when is None or rule.when(p):
            return rule.fn(p)
    return None
