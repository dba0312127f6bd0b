"""PLACEHOLDER until LogisticRegression lands (being written now)."""
class LogisticRegression:
    pass
