"""First calls, cold and warm, side by side with the peer in the same process.

Every case runs in a fresh process twice: "cold" with an empty persistent compilation cache
folder (what a script, a notebook with a new data set or a CLI command meets the first time),
then "warm" with the folder the cold run filled (every later process). In each process the peer
runs on the same data right after ours, and the process also times our second call (compiled,
in memory) and a refit on a new number of rows. The CLI rows time whole commands. jax, numpyro
and ``kullback`` are imported before the clock starts; the kullback subpackage the call needs
(``kullback.fit`` or ``kullback.glm``, which imports scikit-learn's estimator base) is timed and
counted in "cold" and "warm". The peer's modules are imported untimed (after ours, so often free).

    python3 dev.py bench benchmarks/bench_first_call.py            # all cases
    python3 dev.py bench benchmarks/bench_first_call.py --case student_t --case logistic

Prints one markdown table (times in seconds; ratio = ours / peer, < 1 means ours is faster).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CASES = ("student_t", "weibull", "gmm", "logistic", "reverse", "reverse_data")
_LAZY = {"student_t": "kullback.fit", "weibull": "kullback.fit", "gmm": "kullback.fit", "logistic": "kullback.glm",
         "reverse": "kullback.fit", "reverse_data": "kullback.fit"}
ROOT = Path(__file__).resolve().parents[1]


def _data(case: str):
    import numpy as np

    rng = np.random.default_rng(0)
    if case == "student_t":
        return rng.standard_t(5, 200_000) * 2.0 + 1.0, rng.standard_t(5, 150_000) * 2.0 + 1.0
    if case == "weibull":
        return rng.weibull(1.7, 200_000) * 2.0, rng.weibull(1.7, 150_000) * 2.0
    if case == "gmm":
        centers = rng.standard_normal((4, 5)) * 4.0
        x = centers[rng.integers(0, 4, 200_000)] + rng.standard_normal((200_000, 5))
        return x, x[:150_000]
    if case == "logistic":
        x = rng.standard_normal((200_000, 20))
        beta = 0.3 * rng.standard_normal(20)
        y = (rng.random(200_000) < 1.0 / (1.0 + np.exp(-x @ beta))).astype(float)
        return (x, y), (x[:150_000], y[:150_000])
    if case == "reverse":
        d = 10
        a = rng.standard_normal((d, d))
        return (rng.standard_normal(d), a @ a.T / d + np.eye(d)), None
    if case == "reverse_data":  # a Bayesian logistic regression as a numpyro model, its data as arguments
        x = rng.standard_normal((2_000, 5))
        y = (rng.random(2_000) < 1.0 / (1.0 + np.exp(-(0.5 + x @ np.linspace(-1, 1, 5))))).astype(float)
        return (x, y), (x[:1_500], y[:1_500])
    raise ValueError(case)


def _logistic_model(x, y):
    import numpyro
    import numpyro.distributions as ndist

    b0 = numpyro.sample("b0", ndist.Normal(0.0, 2.5))
    beta = numpyro.sample("beta", ndist.Normal(0.0, 2.5).expand([x.shape[1]]).to_event(1))
    with numpyro.plate("rows", x.shape[0]):
        numpyro.sample("y", ndist.Bernoulli(logits=b0 + x @ beta), obs=y)


def _ours(case: str, data, kb, dist):
    import jax.numpy as jnp
    import numpy as np

    if case == "student_t":
        return lambda x: kb.fit(dist.StudentT, x).log_likelihood / len(x)
    if case == "weibull":
        return lambda x: kb.fit(dist.Weibull, x).log_likelihood / len(x)
    if case == "gmm":
        family = kb.families.Mixture(kb.families.Gaussian(5, covariance="full"), 4)
        return lambda x: kb.fit(family, x, key=0, tol=1e-3).log_likelihood / len(x)
    if case == "logistic":
        def fit(xy):
            model = kb.LogisticRegression().fit(*xy)
            p = np.clip(model.predict_proba(xy[0])[:, 1], 1e-300, 1 - 1e-16)
            return float(np.mean(xy[1] * np.log(p) + (1 - xy[1]) * np.log1p(-p)))
        return fit
    if case == "reverse":
        def fit(target):
            mean, cov = jnp.asarray(target[0]), jnp.asarray(target[1])
            prec = jnp.linalg.inv(cov)
            log_p = lambda z: -0.5 * (z - mean) @ prec @ (z - mean)  # noqa: E731  (a new closure each call)
            r = kb.fit(kb.families.Gaussian(10, covariance="full"), log_p, direction="reverse", key=0)
            sd = np.sqrt(np.diag(np.asarray(r.q.covariance_matrix)))
            return float(np.max(np.abs(sd / np.sqrt(np.diag(target[1])) - 1)))  # worst sd error (relative)
        return fit
    if case == "reverse_data":
        family = kb.families.Gaussian(6, covariance="full")
        return lambda xy: float(kb.fit(family, _logistic_model, direction="reverse", key=0, model_args=xy).elbo)
    raise ValueError(case)


def _peer(case: str, data):
    import numpy as np

    if case == "student_t":
        from scipy import stats

        return "scipy.stats.t.fit", lambda x: float(np.mean(stats.t.logpdf(x, *stats.t.fit(x))))
    if case == "weibull":
        from scipy import stats

        def fit(x):
            c, loc, scale = stats.weibull_min.fit(x, floc=0)
            return float(np.mean(stats.weibull_min.logpdf(x, c, loc, scale)))
        return "scipy.stats.weibull_min.fit(floc=0)", fit
    if case == "gmm":
        from sklearn.mixture import GaussianMixture

        return "sklearn GaussianMixture(tol=1e-3)", lambda x: float(
            GaussianMixture(4, covariance_type="full", tol=1e-3, random_state=0).fit(x).score(x))
    if case == "logistic":
        from sklearn.linear_model import LogisticRegression

        def fit(xy):
            model = LogisticRegression(penalty=None, solver="lbfgs", tol=1e-8, max_iter=1000).fit(*xy)
            p = np.clip(model.predict_proba(xy[0])[:, 1], 1e-300, 1 - 1e-16)
            return float(np.mean(xy[1] * np.log(p) + (1 - xy[1]) * np.log1p(-p)))
        return "sklearn LogisticRegression(lbfgs)", fit
    if case == "reverse":
        import jax
        import jax.numpy as jnp
        import numpyro
        import numpyro.distributions as ndist
        from numpyro.infer import SVI, Trace_ELBO
        from numpyro.infer.autoguide import AutoMultivariateNormal

        def fit(target):
            mean, cov = jnp.asarray(target[0]), jnp.asarray(target[1])

            def model():
                numpyro.sample("x", ndist.MultivariateNormal(mean, cov))

            guide = AutoMultivariateNormal(model)
            svi = SVI(model, guide, numpyro.optim.Adam(1e-2), Trace_ELBO())
            run = svi.run(jax.random.PRNGKey(0), 10_000, progress_bar=False)
            q = guide.get_posterior(run.params)
            sd = np.sqrt(np.diag(np.asarray(q.covariance_matrix)))
            return float(np.max(np.abs(sd / np.sqrt(np.diag(target[1])) - 1)))
        return "NumPyro SVI (AutoMVN, Adam 1e-2, 10k steps)", fit
    if case == "reverse_data":
        import jax
        import numpyro
        from numpyro.infer import SVI, Trace_ELBO
        from numpyro.infer.autoguide import AutoMultivariateNormal

        def fit(xy):
            guide = AutoMultivariateNormal(_logistic_model)
            svi = SVI(_logistic_model, guide, numpyro.optim.Adam(1e-2), Trace_ELBO())
            run = svi.run(jax.random.PRNGKey(0), 10_000, *xy, progress_bar=False)
            # its ELBO at the final parameters on 4000 draws, as ours is reported
            loss = Trace_ELBO(num_particles=4000).loss(jax.random.PRNGKey(1), run.params, _logistic_model, guide, *xy)
            return -float(loss)
        return "NumPyro SVI (AutoMVN, Adam 1e-2, 10k steps)", fit
    raise ValueError(case)


def _timed(fn, arg):
    start = time.perf_counter()
    value = fn(arg)
    return time.perf_counter() - start, value


def worker(case: str) -> dict:
    """One fresh process: our first call, our second call, a refit on a new size, the peer."""
    start = time.perf_counter()
    import jax

    jax.config.update("jax_enable_x64", True)
    import numpyro.distributions as dist

    import kullback as kb
    from kullback._compile import cache_from_environment, count_compiles

    cache_from_environment()  # KULLBACK_CACHE_DIR, set by the driver
    imports = time.perf_counter() - start
    data, other = _data(case)
    ours = _ours(case, data, kb, dist)
    # the subpackage our first call imports (kullback.glm brings scikit-learn's estimator base
    # classes, 0.6 s): timed on its own, and part of "cold"; the peer's own import is not timed
    lazy = time.perf_counter()
    importlib.import_module(_LAZY[case])
    lazy = time.perf_counter() - lazy
    with count_compiles() as first_count:
        first, first_value = _timed(ours, data)
    first += lazy
    second, _ = _timed(ours, data)
    out = {"case": case, "imports": imports, "lazy_import": lazy, "first": first, "first_compiles": first_count.count,
           "first_compile_s": first_count.seconds, "second": second, "ours_value": first_value}
    if other is not None:
        with count_compiles() as refit_count:
            out["refit"], _ = _timed(ours, other)
        out["refit_compiles"] = refit_count.count
    name, peer = _peer(case, data)
    out["peer"], out["peer_value"] = _timed(peer, data)
    out["peer_name"] = name
    return out


def _run_worker(case: str, cache: str) -> dict:
    env = dict(os.environ, KULLBACK_CACHE_DIR=cache)
    env.pop("KULLBACK_NO_CACHE", None)
    proc = subprocess.run([sys.executable, __file__, "--worker", case], env=env, capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"{case} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _command_time(args: list[str], env: dict) -> float:
    start = time.perf_counter()
    subprocess.run(args, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def cli_rows(cache_root: str) -> list[str]:
    """kullback --help, import kullback beyond import jax, two kl commands and kullback demo, cold and warm."""
    exe = str(Path(sys.executable).with_name("kullback"))
    env = dict(os.environ, KULLBACK_CACHE_DIR=str(Path(cache_root) / "cli"))
    env.pop("KULLBACK_NO_CACHE", None)
    rows = []
    helps = [_command_time([exe, "--help"], env) for _ in range(3)]
    rows.append(f"| `kullback --help` | {min(helps):.2f} | | | | goal < 0.5 s |")
    jax_only = min(_command_time([sys.executable, "-c", "import jax"], env) for _ in range(3))
    both = min(_command_time([sys.executable, "-c", "import jax, kullback; kullback.kl"], env) for _ in range(3))
    rows.append(f"| `import kullback` (and its measures) beyond `import jax` | {both - jax_only:.2f} | | | | goal < 1.5 s |")
    for args in (["kl", "normal(0, 1)", "normal(1, 2)"], ["kl", "student_t(3)", "normal(0, 1)"]):
        cold = _command_time([exe, *args], env)
        warm = _command_time([exe, *args], env)
        shown = " ".join(f'"{a}"' if " " in a or "(" in a else a for a in args)
        rows.append(f"| `kullback {shown}` | {cold:.2f} | {warm:.2f} | | | |")
    out = str(Path(cache_root) / "demo.png")
    cold = _command_time([exe, "demo", "--output", out], env)
    warm = _command_time([exe, "demo", "--output", out], env)
    rows.append(f"| `kullback demo` (figure included) | {cold:.2f} | {warm:.2f} | | | goal < 10 s cold, < 4 s warm |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--case", action="append", choices=CASES)
    parser.add_argument("--worker", choices=CASES, help=argparse.SUPPRESS)
    parser.add_argument("--no-cli", action="store_true", help="skip the command-line rows")
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker)))
        return
    print(f"# python {sys.version.split()[0]}, load average {os.getloadavg()[0]:.2f} at start", flush=True)
    header = ("| case | ours cold (its lazy import) | ours warm (filled cache) | ours 2nd call | refit, new size (compiles) "
              "| peer | cold / peer | warm / peer |")
    lines = [header, "|" + "---|" * 8]
    with tempfile.TemporaryDirectory() as root:
        for case in args.case or CASES:
            cache = str(Path(root) / case)
            cold = _run_worker(case, cache)
            warm = _run_worker(case, cache)
            refit = f"{cold['refit']:.3f} ({cold['refit_compiles']}); {cold['refit'] / cold['first']:.2f}× first" if "refit" in cold else ""
            lines.append(
                f"| {case} | {cold['first']:.2f} ({cold['first_compiles']} compiles; import {cold['lazy_import']:.2f}) "
                f"| {warm['first']:.2f} "
                f"({warm['first_compiles']}) | {cold['second']:.3f} | {refit} | {cold['peer']:.2f} {cold['peer_name']} "
                f"| {cold['first'] / cold['peer']:.2f} | {warm['first'] / warm['peer']:.2f} |"
            )
            print(lines[-1], f"  values: ours {cold['ours_value']:.10g}, peer {cold['peer_value']:.10g}", flush=True)
        if not args.no_cli:
            lines.append("")
            lines.append("| command | cold | warm (filled cache) | | | |")
            lines.append("|---|---|---|---|---|---|")
            lines.extend(cli_rows(root))
    print(f"# load average {os.getloadavg()[0]:.2f} at end")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
