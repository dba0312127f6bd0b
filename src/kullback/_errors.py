"""Exception types of kullback."""

from __future__ import annotations

__all__ = ["NoClosedFormError", "FitError"]


class NoClosedFormError(NotImplementedError):
    """Raised by ``kb.kl`` (and relatives) for a pair of distributions with no registered closed
    form. The message points to ``kb.estimate_kl``, which answers every pair with an error bar."""


class FitError(RuntimeError):
    """Raised when a fit cannot start or cannot make progress; the message says what to try."""
