"""PLACEHOLDER until fit lands (being written now)."""
class FitResult:
    pass
