"""The public surface: every name the package lists imports and is what it claims to be."""

import importlib

import pytest

import kullback as kb

PACKAGES = ["kullback", "kullback.measure", "kullback.families", "kullback.fit", "kullback.glm"]


@pytest.mark.parametrize("name", PACKAGES)
def test_every_listed_name_imports(name):
    module = importlib.import_module(name)
    assert module.__all__, f"{name} lists no public names"
    for public in module.__all__:
        assert getattr(module, public) is not None, f"{name}.{public} is missing"


def test_contract_names_present():
    for public in [
        "kl", "cross_entropy", "entropy", "estimate_kl", "estimate_cross_entropy",
        "estimate_entropy", "Estimate", "fit", "FitResult", "families", "LogisticRegression",
    ]:
        assert public in kb.__all__


def test_no_placeholders_left():
    import pathlib

    root = pathlib.Path(kb.__file__).parent
    offenders = [str(p) for p in root.rglob("*.py") if "PLACEHOLDER" in p.read_text()]
    assert offenders == []


def test_the_fit_subpackage_is_reachable_and_callable():
    import inspect

    import kullback.fit as fit_package

    assert kb.fit is fit_package and callable(kb.fit)  # kb.fit(...) calls kullback.fit.fit
    assert kb.fit.FitResult is kb.FitResult and kb.fit.ReverseOptions().method == "auto"
    assert "direction" in inspect.signature(kb.fit).parameters
    result = kb.fit(__import__("numpyro.distributions", fromlist=["Normal"]).Normal, [1.0, 2.0, 3.0])
    assert isinstance(result, kb.FitResult) and abs(float(result.params["loc"]) - 2.0) < 1e-6
