"""Benchmark (issue 4): closed-form KL of 100,000 MultivariateNormal pairs (d = 10, full
covariance), kullback vs ``torch.distributions.kl_divergence``, float64 and float32, CPU.

Both get the pairs as (loc, scale_tril) batches. Ours: ``kb.kl`` on numpyro
MultivariateNormal(loc, scale_tril=...) under ``jax.jit`` (one triangular solve on
[L_p − L_q | μ_p − μ_q]); theirs: torch MultivariateNormal(loc, scale_tril=...) and
``kl_divergence``. Values are compared to each other (rtol 1e-8 in float64) and to a numpy
textbook formula on 1,000 pairs. Best of N. Run: python benchmarks/bench_closed_form.py
"""

import argparse
import time

import jax
import numpy as np
import torch

jax.config.update("jax_enable_x64", True)
import numpyro.distributions as dist  # noqa: E402

import kullback as kb  # noqa: E402


def best(fn, repeat):
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def textbook(mp, lp, mq, lq):
    cp, cq = lp @ np.swapaxes(lp, -1, -2), lq @ np.swapaxes(lq, -1, -2)
    inv = np.linalg.inv(cq)
    diff = mq - mp
    d = mp.shape[-1]
    return 0.5 * (np.einsum("nij,nji->n", inv, cp) + np.einsum("ni,nij,nj->n", diff, inv, diff) - d
                  + np.linalg.slogdet(cq)[1] - np.linalg.slogdet(cp)[1])  # fmt: skip


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--d", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args()
    rng = np.random.default_rng(0)

    def tril():
        m = rng.normal(size=(a.n, a.d, a.d)) / np.sqrt(a.d)
        cov = m @ np.swapaxes(m, -1, -2) + 0.5 * np.eye(a.d)
        return np.linalg.cholesky(cov)

    mp, mq = rng.normal(size=(a.n, a.d)), rng.normal(size=(a.n, a.d))
    lp, lq = tril(), tril()
    ours_fn = jax.jit(lambda a_, b_, c_, d_: kb.kl(dist.MultivariateNormal(a_, scale_tril=b_),
                                                  dist.MultivariateNormal(c_, scale_tril=d_)))  # fmt: skip
    print(f"{a.n} pairs, d = {a.d}, full covariance; best of {a.repeat}; jax {jax.__version__}, torch {torch.__version__}, "
          f"torch threads {torch.get_num_threads()}")  # fmt: skip
    print("| dtype | kullback (s) | torch (s) | speed-up | max rel diff |")
    print("|---|---|---|---|---|")
    for dtype, tdtype in ((np.float64, torch.float64), (np.float32, torch.float32)):
        args = [jax.device_put(v.astype(dtype)) for v in (mp, lp, mq, lq)]
        targs = [torch.from_numpy(v.astype(dtype)) for v in (mp, lp, mq, lq)]
        jax.block_until_ready(ours_fn(*args))  # compile
        t_ours, ours = best(lambda: jax.block_until_ready(ours_fn(*args)), a.repeat)

        def theirs_fn():
            with torch.no_grad():
                p = torch.distributions.MultivariateNormal(targs[0], scale_tril=targs[1], validate_args=False)
                q = torch.distributions.MultivariateNormal(targs[2], scale_tril=targs[3], validate_args=False)
                return torch.distributions.kl_divergence(p, q)

        t_theirs, theirs = best(theirs_fn, a.repeat)
        ours, theirs = np.asarray(ours, dtype=float), theirs.numpy().astype(float)
        rel = float(np.max(np.abs(ours - theirs) / np.abs(theirs)))
        if dtype == np.float64:
            np.testing.assert_allclose(ours, theirs, rtol=1e-8)
            np.testing.assert_allclose(ours[:1000], textbook(mp[:1000], lp[:1000], mq[:1000], lq[:1000]), rtol=1e-9)
        assert np.all(ours >= 0)
        print(f"| {np.dtype(dtype).name} | {t_ours:.3f} | {t_theirs:.3f} | {t_theirs / t_ours:.1f}x | {rel:.1e} |")


if __name__ == "__main__":
    main()
