"""Benchmark 3 (issue 5): unpenalised logistic regression on dense float64 data, side by side.

kb.LogisticRegression against scikit-learn (lbfgs and newton-cholesky), glum and statsmodels
Logit, in one process on the same data. Every fit is unpenalised (maximum likelihood); each
peer gets a tolerance tight enough to reach the optimum. The mean log-loss of every solution is
evaluated by one exact formula (scipy's log_expit) so the accuracies are comparable. Times are
best-of-N wall-clock seconds over interleaved rounds (statsmodels: best of at most 2); ours is
shown warm (compiled) and on its first call (compiling). Our time includes the standard errors:
``fit`` forms the exact Hessian at the optimum eagerly (not lazily), as statsmodels does; the
scikit-learn and glum fits compute none.

Usage: python benchmarks/bench_logistic.py [--n 1000000] [--p 50] [--repeat 3] [--skip statsmodels]
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import time
import warnings

import numpy as np
from scipy.special import log_expit


def mean_log_loss(X: np.ndarray, y: np.ndarray, coef: np.ndarray, intercept: float) -> float:
    eta = X @ coef + intercept
    return float(-np.mean(y * log_expit(eta) + (1 - y) * log_expit(-eta)))


def simulate(n: int, p: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p))
    beta = rng.normal(scale=1.0 / np.sqrt(p), size=p)
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-(0.3 + X @ beta)))).astype(np.float64)
    return X, y


def ours(X, y):
    import kullback.glm as glm

    model = glm.LogisticRegression(tol=1e-8).fit(X, y)
    assert model.converged_, "kullback did not converge"
    assert model.coef_stderr_ is not None and np.all(np.isfinite(model.coef_stderr_)), "no standard errors"
    ours.steps = int(model.n_iter_[0])
    return model.coef_[0], float(model.intercept_[0])


def ours_no_se(X, y):
    """Like for like with scikit-learn and glum, which compute no standard errors."""
    import kullback.glm as glm

    model = glm.LogisticRegression(tol=1e-8, stderr=False).fit(X, y)
    assert model.converged_ and model.coef_stderr_ is None
    return model.coef_[0], float(model.intercept_[0])


def sklearn_fit(solver):
    def fit(X, y):
        from sklearn.linear_model import LogisticRegression

        kwargs = dict(C=np.inf, max_iter=1000)  # C=inf: unpenalised (penalty=None is deprecated)
        kwargs["tol"] = 1e-10 if solver == "lbfgs" else 1e-8
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = LogisticRegression(solver=solver, **kwargs).fit(X, y)
        return model.coef_[0], float(model.intercept_[0])

    return fit


def glum_fit(X, y):
    from glum import GeneralizedLinearRegressor

    model = GeneralizedLinearRegressor(family="binomial", alpha=0, gradient_tol=1e-8, max_iter=100)
    model.fit(X, y)
    return np.asarray(model.coef_), float(model.intercept_)


def statsmodels_fit(X, y):
    import statsmodels.api as sm

    result = sm.Logit(y, sm.add_constant(X, prepend=True)).fit(method="newton", tol=1e-8, maxiter=100, disp=0)
    params = np.asarray(result.params)
    return params[1:], float(params[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--p", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip", nargs="*", default=[])
    args = parser.parse_args()

    import jax

    jax.config.update("jax_enable_x64", True)
    X, y = simulate(args.n, args.p)
    print(f"logistic regression, unpenalised: n={args.n:,}, p={args.p}, dense float64 "
          f"({X.nbytes / 2**20:.0f} MiB); {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores; best of {args.repeat}")

    start = time.perf_counter()
    ours(X, y)
    first_call = time.perf_counter() - start
    ours_no_se(X, y)  # compiles its own (smaller) program
    contenders = {
        "kullback (newton)": ours,
        "kullback (newton, stderr=False)": ours_no_se,
        "sklearn lbfgs": sklearn_fit("lbfgs"),
        "sklearn newton-cholesky": sklearn_fit("newton-cholesky"),
        "glum": glum_fit,
        "statsmodels Logit": statsmodels_fit,
    }
    # Rounds interleave the solvers (best of N each), so that a burst of load on the shared
    # machine does not fall on one of them only.
    contenders = {k: v for k, v in contenders.items() if not any(s in k for s in args.skip)}
    times, results = {k: [] for k in contenders}, {}
    for round_ in range(args.repeat):
        for name, fit in list(contenders.items()):
            if name.startswith("statsmodels") and round_ >= 2:
                continue  # slow: best of 2 at most
            gc.collect()
            start = time.perf_counter()
            try:
                results[name] = fit(X, y)
            except ImportError as err:
                print(f"{name}: not installed ({err})")
                del contenders[name]
                continue
            times[name].append(time.perf_counter() - start)
            print(f"  round {round_ + 1}: {name} {times[name][-1]:.2f} s", flush=True)
    rows = {name: (min(times[name]), mean_log_loss(X, y, *results[name])) for name in contenders}

    best_loss = min(loss for _, loss in rows.values())
    peers = {k: v for k, v in rows.items() if not k.startswith("kullback")}
    fastest_peer = min(peers.values(), key=lambda v: v[0])[0] if peers else float("nan")
    ours_seconds = rows["kullback (newton)"][0]
    print()
    print(f"| solver | seconds | vs kullback | mean log-loss − best |")
    print(f"|---|---:|---:|---:|")
    for name, (seconds, loss) in rows.items():
        print(f"| {name} | {seconds:.2f} | {seconds / ours_seconds:.2f}× | {loss - best_loss:.1e} |")
    print(f"| kullback, first call (compiling) | {first_call:.2f} | {first_call / ours_seconds:.2f}× | |")
    print()
    print(f"best mean log-loss: {best_loss:.12f}")
    print(f"kullback: {ours.steps} Newton steps; its times include the standard errors (exact Hessian at "
          "the optimum, formed inside fit); sklearn and glum compute none")
    print(f"fastest peer / kullback (warm): {fastest_peer / ours_seconds:.2f}× with standard errors, "
          f"{fastest_peer / rows['kullback (newton, stderr=False)'][0]:.2f}× without (like for like)")


if __name__ == "__main__":
    main()
