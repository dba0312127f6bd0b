"""numpyro distributions flatten to their leaves in a fixed order, so compiled programs that take or
return them hit the persistent compilation cache in every process.

numpyro gathers a distribution's pytree fields into a ``set`` and returns ``tuple(set)``: the order
of the leaves then follows Python's string hashing, which is randomised per process
(``PYTHONHASHSEED``). Within a process that is harmless, but a program's parameters and results
follow the leaf order, so the same fit lowered in two processes gave two different programs: two
cache keys, and a full compile in every new process (a 10-dimensional reverse fit: 2.1 s instead of
0.55 s with a filled cache). Importing this module makes both gathers return their fields sorted by
name. Only the order changes (the same fields, flattened and unflattened by the same functions), and
no code can have relied on the old order, which changed from one process to the next.
"""

from __future__ import annotations

from numpyro.distributions.distribution import Distribution

__all__: list[str] = []


def _sorted(gather):
    original = gather.__func__

    def gather_sorted(cls):
        return tuple(sorted(original(cls)))

    gather_sorted.__doc__ = original.__doc__
    gather_sorted._kullback_sorted = True  # type: ignore[attr-defined]
    return classmethod(gather_sorted)


for _name in ("gather_pytree_data_fields", "gather_pytree_aux_fields"):
    if not getattr(getattr(Distribution, _name), "_kullback_sorted", False):
        setattr(Distribution, _name, _sorted(getattr(Distribution, _name)))
