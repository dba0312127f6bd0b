"""The ``kullback`` command line (the ``kullback`` program runs :func:`main`).

Importing it is cheap: ``kullback --help`` and every subcommand's ``--help`` answer without
JAX, numpyro, pandas or matplotlib; each command imports what it uses when it runs.
"""

from ._app import app, main

__all__ = ["app", "main"]
