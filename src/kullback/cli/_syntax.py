"""A small distribution syntax for the command line: ``"normal(0, 1)"`` → a numpyro distribution.

    spec      := name "(" [arg ("," arg)*] ")"
    arg       := number | list | spec | keyword "=" (number | list)
    number    := an int or float literal, optionally signed; ``inf``
    mixture   := "mixture(" [weights] "," [spec, spec, ...] ")"

Parsed with Python's ``ast`` (literals and calls only; nothing is evaluated). Names and their
positional parameters (and defaults) are the rows of :data:`kullback.cli._names.DISTRIBUTIONS`, the
table ``kullback fit`` reads too; for example
``student_t(3)``, ``gamma(2, rate=0.5)``, ``mvn([0, 0], [[1, 0.5], [0.5, 2]])``,
``mixture([0.5, 0.5], [normal(-3, 1), normal(3, 1)])``.
"""

from __future__ import annotations

import ast
from typing import Any

import jax.numpy as jnp
import numpyro.distributions as dist

from ._names import DISTRIBUTIONS, canonical, numpyro_class

__all__ = ["parse_distribution", "DistributionSyntaxError"]


class DistributionSyntaxError(ValueError):
    """A distribution spec that cannot be parsed; the message says what was expected."""


def _construct(name: str, args: list[Any]) -> dist.Distribution:
    """The numpyro distribution of the row ``name`` from its parameter values, in spec order."""
    row = DISTRIBUTIONS[name]
    kwargs = {p: jnp.asarray(v) if row.arrays else v for p, v in zip(row.params, args)}
    return numpyro_class(name)(**kwargs)


def _literal(node: ast.AST, text: str) -> Any:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return float(node.value) if isinstance(node.value, float) else node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        v = _literal(node.operand, text)
        return -v if isinstance(node.op, ast.USub) else v
    if isinstance(node, ast.Name) and node.id in ("inf", "nan"):
        return float(node.id)
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_value(e, text) for e in node.elts]
    raise DistributionSyntaxError(
        f"Expected a number, a list or a distribution in {text!r}; got {ast.unparse(node)!r}."
    )


def _value(node: ast.AST, text: str) -> Any:
    return _build(node, text) if isinstance(node, ast.Call) else _literal(node, text)


def _mixture(node: ast.Call, text: str) -> dist.Distribution:
    if len(node.args) != 2 or node.keywords:
        raise DistributionSyntaxError(
            f"Expected mixture([weights], [components]) in {text!r}, e.g. "
            "'mixture([0.5, 0.5], [normal(-3, 1), normal(3, 1)])'."
        )
    weights = _literal(node.args[0], text)
    components = _literal(node.args[1], text)
    if not (isinstance(weights, list) and isinstance(components, list) and len(weights) == len(components) > 0):
        raise DistributionSyntaxError(f"Expected as many mixture weights as components in {text!r}.")
    if not all(isinstance(c, dist.Distribution) for c in components):
        raise DistributionSyntaxError(f"Expected the mixture components to be distributions in {text!r}.")
    w = jnp.asarray(weights, dtype=float)
    if jnp.any(w < 0) or abs(float(jnp.sum(w)) - 1.0) > 1e-8:
        raise DistributionSyntaxError(f"Expected mixture weights that are non-negative and sum to 1; got {weights}.")
    mixing = dist.CategoricalProbs(w)
    first = type(components[0])
    if all(type(c) is first for c in components) and hasattr(first, "arg_constraints"):
        names = [k for k in first.arg_constraints if k in components[0].__dict__]
        stacked = {k: jnp.stack([jnp.asarray(getattr(c, k)) for c in components]) for k in names}
        try:
            return dist.MixtureSameFamily(mixing, first(**stacked))
        except Exception:  # noqa: BLE001  (families whose constructor takes other names)
            pass
    return dist.MixtureGeneral(mixing, components)


def _build(node: ast.AST, text: str) -> dist.Distribution:
    if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
        raise DistributionSyntaxError(f"Expected a distribution like 'normal(0, 1)'; got {text!r}.")
    name = canonical(node.func.id)
    if name == "mixture":
        return _mixture(node, text)
    if name not in DISTRIBUTIONS:
        raise DistributionSyntaxError(
            f"Unknown distribution {node.func.id!r} in {text!r}; expected one of "
            f"{sorted(DISTRIBUTIONS) + ['mixture']}."
        )
    params, defaults = DISTRIBUTIONS[name].params, DISTRIBUTIONS[name].defaults
    if len(node.args) > len(params):
        raise DistributionSyntaxError(
            f"Expected at most {len(params)} arguments ({', '.join(params)}) for {name}; got {len(node.args)}."
        )
    values = dict(zip(params, (_literal(a, text) for a in node.args)))
    for kw in node.keywords:
        if kw.arg not in params:
            raise DistributionSyntaxError(f"Unknown parameter {kw.arg!r} for {name}; expected {params}.")
        values[kw.arg] = _literal(kw.value, text)
    missing = [p for p in params if p not in values and p not in defaults]
    if missing:
        raise DistributionSyntaxError(f"Expected a value for {', '.join(missing)} in {name}({', '.join(params)}).")
    args = [values.get(p, defaults.get(p)) for p in params]
    try:
        d = _construct(name, args)
    except (TypeError, ValueError) as err:
        raise DistributionSyntaxError(f"Could not build {name} from {args}: {err}") from None
    for param, constraint in d.arg_constraints.items():
        value = d.__dict__.get(param)
        try:
            ok = value is None or bool(jnp.all(constraint(jnp.asarray(value))))
        except ValueError:  # a dependent constraint (e.g. Uniform's high > low): numpyro checks it
            ok = True
        if not ok:
            raise DistributionSyntaxError(
                f"Expected {param} of {name} to satisfy {type(constraint).__name__.strip('_')}; got {value}."
            )
    return d


def parse_distribution(text: str) -> dist.Distribution:
    """Parse ``text`` (the syntax in the module docstring) into a numpyro distribution.

    Raises:
        DistributionSyntaxError: the text is not a known distribution spec; the message says
            what was expected.

    Example:
        >>> d = parse_distribution("mixture([0.5, 0.5], [normal(-3, 1), normal(3, 1)])")
        >>> type(d).__name__, d.mixture_size
        ('MixtureSameFamily', 2)
        >>> parse_distribution("student_t(3)").df
        3
    """
    if not isinstance(text, str) or not text.strip():
        raise DistributionSyntaxError(f"Expected a distribution like 'normal(0, 1)'; got {text!r}.")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError:
        raise DistributionSyntaxError(f"Expected a distribution like 'normal(0, 1)'; could not parse {text!r}.") from None
    return _build(tree.body, text)
