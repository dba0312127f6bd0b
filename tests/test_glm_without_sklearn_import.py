"""The GLM estimators never import scikit-learn themselves, yet are scikit-learn estimators.

Each import-order check runs in a fresh interpreter, since this one has imported scikit-learn
already. References: scikit-learn's own ``clone``, ``GridSearchCV``, ``cross_val_score``,
``Pipeline`` and ``check_estimator``; its exception classes for what fit and predict raise.
"""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

from kullback.glm import LogisticRegression, SeparationWarning, SoftmaxRegression
from kullback.glm._sklearn_compat import ConvergenceWarning, NotFittedError

DATA = """
    import numpy as np
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    y = (rng.uniform(size=200) < 1 / (1 + np.exp(-(0.4 + X @ [0.8, -0.6, 1.1])))).astype(int)
    y3 = np.argmax(X @ [[0.0, 1.0, -1.0], [0.0, -0.5, 0.5], [0.0, 0.3, 0.2]] + rng.gumbel(size=(200, 3)), axis=1)
"""


def _python(code: str) -> dict:
    """Run ``DATA`` + ``code`` in a fresh interpreter; its last output line, read as JSON."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(DATA) + textwrap.dedent(code)],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout.splitlines()[-1])


@pytest.mark.timeout(150)
def test_fit_predict_score_summary_import_no_sklearn():
    report = _python("""
        import json, sys, warnings
        warnings.simplefilter("error")  # a warning would import sklearn.exceptions: the data converge
        import kullback.glm as glm
        out = {}
        for model, labels in [(glm.LogisticRegression(), y), (glm.SoftmaxRegression(), y3)]:
            model.fit(X, labels)
            model.predict(X), model.predict_proba(X), model.predict_log_proba(X), model.decision_function(X)
            out[type(model).__name__] = [model.score(X, labels), str(model.summary()) != "", repr(model)]
        glm.LogisticRegression(penalty="l2", C=0.5).fit(X, y).set_params(C=2.0).get_params()
        out["sklearn"] = sorted(m for m in sys.modules if m.startswith("sklearn"))
        print(json.dumps(out))
    """)
    assert report.pop("sklearn") == []
    for name, (score, has_summary, text) in report.items():
        assert 0.5 < score <= 1 and has_summary and text == f"{name}()"


@pytest.mark.timeout(150)
def test_without_sklearn_installed_our_classes_are_raised():
    report = _python("""
        import json, pickle, sys, warnings
        sys.modules["sklearn"] = None  # as if not installed: `import sklearn` raises ImportError
        import kullback.glm as glm
        from kullback.glm import _sklearn_compat as compat

        out = {"have_sklearn": compat.HAVE_SKLEARN}
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model = glm.LogisticRegression(max_iter=1).fit(X, y)
        out["warning"] = [w.category is compat.ConvergenceWarning for w in caught]
        try:
            glm.SoftmaxRegression().predict(X)
        except compat.NotFittedError as err:
            out["error"] = type(err) is compat.NotFittedError and isinstance(err, (ValueError, AttributeError))
        copy = pickle.loads(pickle.dumps(model))
        out["pickle"] = bool((copy.predict(X) == model.predict(X)).all())
        out["params"] = model.get_params()["max_iter"]
        out["repr"] = repr(glm.LogisticRegression(C=2.0))
        print(json.dumps(out))
    """)
    assert report["have_sklearn"] is False
    assert report["warning"] == [True] and report["error"] is True and report["pickle"] is True
    assert report["params"] == 1
    assert report["repr"].startswith("LogisticRegression(C=2.0, fit_intercept=True, ")  # all settings without sklearn


@pytest.mark.timeout(200)
def test_sklearn_imported_after_kullback_sees_an_estimator():
    pytest.importorskip("sklearn")
    report = _python("""
        import json, pickle, sys, warnings
        import kullback.glm as glm
        assert not any(m.startswith("sklearn") for m in sys.modules)
        from sklearn.base import clone, is_classifier
        from sklearn.model_selection import GridSearchCV, cross_val_score
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import StandardScaler
        from sklearn.utils import get_tags
        from sklearn.utils.estimator_checks import check_estimator

        model = glm.LogisticRegression(penalty="l2", C=2.0)
        out = {"classifier": is_classifier(model) and model._estimator_type == "classifier"}
        copy = clone(model)
        out["clone"] = copy is not model and copy.get_params() == model.get_params()
        tags = get_tags(model)
        out["tags"] = [tags.estimator_type, tags.target_tags.required, tags.classifier_tags.multi_class]
        out["softmax_multi_class"] = get_tags(glm.SoftmaxRegression()).classifier_tags.multi_class
        out["set_params"] = model.set_params(C=3.0) is model and model.get_params()["C"] == 3.0
        try:
            model.set_params(gamma=1.0)
        except ValueError as err:
            out["invalid"] = str(err)
        search = GridSearchCV(glm.LogisticRegression(penalty="l2"), {"C": [0.01, 1.0]}, cv=3).fit(X, y)
        out["grid"] = [search.best_params_["C"], search.best_score_]
        out["cv"] = cross_val_score(glm.SoftmaxRegression(), X, y3, cv=3).tolist()
        pipe = Pipeline([("scale", StandardScaler()), ("logit", glm.LogisticRegression())])
        pipe.set_params(logit__tol=1e-10).fit(X * 100.0, y)
        out["pipeline"] = [pipe.score(X * 100.0, y), pipe.get_params()["logit__tol"], repr(pipe).count("LogisticRegression(tol=1e-10)")]
        fitted = pickle.loads(pickle.dumps(pipe))
        out["pickle"] = bool((fitted.predict_proba(X) == pipe.predict_proba(X)).all())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # separation and convergence warnings on the checks' toy data
            results = check_estimator(
                glm.LogisticRegression(), on_fail=None,
                expected_failed_checks={"check_sample_weight_equivalence_on_dense_data": "separated data"},
            )
        out["checks"] = {r["check_name"]: r["status"] for r in results}
        print(json.dumps(out))
    """)
    assert report["classifier"] and report["clone"] and report["set_params"]
    assert report["tags"] == ["classifier", True, False] and report["softmax_multi_class"] is True
    assert report["invalid"].startswith("Invalid parameter 'gamma' for estimator LogisticRegression(C=3.0, penalty='l2')")
    assert report["grid"][0] in (0.01, 1.0) and report["grid"][1] > 0.6
    assert len(report["cv"]) == 3 and min(report["cv"]) > 0.4
    assert report["pipeline"][0] > 0.6 and report["pipeline"][1:] == [1e-10, 1]
    assert report["pickle"]
    checks = report["checks"]
    failed = [name for name, status in checks.items() if status == "failed"]
    assert failed == [] and sum(status == "passed" for status in checks.values()) >= 50
    for name in ("check_estimator_cloneable", "check_estimators_pickle", "check_get_params_invariance",
                 "check_set_params", "check_valid_tag_types", "check_estimators_unfitted"):
        assert checks[name] == "passed", name


# --- warnings and errors: scikit-learn's classes when it is installed --------------------------

_RNG = np.random.default_rng(1)
X_SMALL = _RNG.normal(size=(100, 2))
Y_SMALL = (_RNG.uniform(size=100) < 1 / (1 + np.exp(-X_SMALL @ [1.0, -1.0]))).astype(int)


def test_non_convergence_warns_with_sklearns_class():
    exceptions = pytest.importorskip("sklearn.exceptions")
    with pytest.warns(exceptions.ConvergenceWarning, match="did not converge: it reached max_iter=1") as caught:
        LogisticRegression(max_iter=1).fit(X_SMALL, Y_SMALL)
    category = caught[0].category
    assert issubclass(category, ConvergenceWarning) and category.__name__ == "ConvergenceWarning"
    with warnings.catch_warnings():
        warnings.simplefilter("error", exceptions.ConvergenceWarning)  # a user's filter on sklearn's class
        with pytest.raises(exceptions.ConvergenceWarning):
            SoftmaxRegression(max_iter=1).fit(X_SMALL, Y_SMALL)


def test_separation_warning_is_also_sklearns_convergence_warning():
    exceptions = pytest.importorskip("sklearn.exceptions")
    X = np.array([[0.0], [1.0], [2.0], [3.0], [4.0], [5.0]])
    with pytest.warns(SeparationWarning, match="complete separation") as caught:
        LogisticRegression().fit(X, [0, 0, 0, 1, 1, 1])
    assert issubclass(caught[0].category, exceptions.ConvergenceWarning)
    assert caught[0].category.__name__ == "SeparationWarning"


def test_not_fitted_and_column_y_use_sklearns_classes():
    exceptions = pytest.importorskip("sklearn.exceptions")
    with pytest.raises(exceptions.NotFittedError, match="not fitted yet") as info:
        LogisticRegression().predict_proba(X_SMALL)
    assert isinstance(info.value, NotFittedError) and isinstance(info.value, (ValueError, AttributeError))
    again = pickle.loads(pickle.dumps(info.value))  # e.g. sent back from a joblib worker
    assert type(again) is type(info.value) and again.args == info.value.args
    with pytest.warns(exceptions.DataConversionWarning, match="column-vector y"):
        LogisticRegression().fit(X_SMALL, Y_SMALL[:, None])


def test_score_is_weighted_accuracy_as_sklearn():
    metrics = pytest.importorskip("sklearn.metrics")
    model = SoftmaxRegression(penalty="l2").fit(X_SMALL, Y_SMALL)
    weights = _RNG.uniform(size=100)
    expected = metrics.accuracy_score(Y_SMALL, model.predict(X_SMALL), sample_weight=weights)
    assert model.score(X_SMALL, Y_SMALL, sample_weight=weights) == pytest.approx(expected, rel=1e-14)
    assert model.score(X_SMALL, Y_SMALL[:, None]) == metrics.accuracy_score(Y_SMALL, model.predict(X_SMALL))
    with pytest.raises(ValueError, match=r"Expected y to have one label per row of X \(100\)"):
        model.score(X_SMALL, Y_SMALL[:50])
