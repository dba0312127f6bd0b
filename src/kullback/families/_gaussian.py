"""PLACEHOLDER until families land (being written now)."""
class Gaussian:
    def __init__(self, dim, covariance="diag"):
        raise NotImplementedError("placeholder")
