"""Benchmark 1 (issue 3): KL of two (1000, 100000) float64 probability arrays along the last axis.

Ours (validation on) against scipy.stats.entropy, numpy.sum(scipy.special.rel_entr) and a plain
NumPy p*(log p - log q), side by side in one process, best of N. The repeats go round-robin over the
implementations, so that a change of load on a shared machine hits all of them alike.
Run: python benchmarks/bench_discrete.py [--rows 200]
"""

import argparse
import os
import time

import jax
import numpy as np
import scipy
import scipy.special
import scipy.stats

jax.config.update("jax_enable_x64", True)
import kullback as kb  # noqa: E402


def best_round_robin(runs, repeat):
    times = {name: [] for name in runs}
    for _ in range(repeat):
        for name, fn in runs.items():
            t0 = time.perf_counter()
            jax.block_until_ready(fn())
            times[name].append(time.perf_counter() - t0)
    return {name: min(ts) for name, ts in times.items()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1000)
    ap.add_argument("--cols", type=int, default=100000)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    p = rng.random((a.rows, a.cols)); p /= p.sum(-1, keepdims=True)
    q = rng.random((a.rows, a.cols)); q /= q.sum(-1, keepdims=True)
    pj, qj = jax.device_put(p), jax.device_put(q)
    ref = np.sum(scipy.special.rel_entr(p, q), -1)
    np.testing.assert_allclose(kb.kl(p, q), ref, rtol=1e-12)
    np.testing.assert_allclose(kb.kl(pj, qj), ref, rtol=1e-12)
    runs = {
        "kullback kb.kl (NumPy in)": lambda: kb.kl(p, q),
        "kullback kb.kl (jax.Array in)": lambda: kb.kl(pj, qj),
        "scipy.stats.entropy": lambda: scipy.stats.entropy(p, q, axis=-1),
        "numpy.sum(rel_entr)": lambda: np.sum(scipy.special.rel_entr(p, q), -1),
        "numpy p*(log p - log q)": lambda: np.sum(p * (np.log(p) - np.log(q)), -1),
    }
    load = os.getloadavg()[0]
    t = best_round_robin(runs, a.repeat)
    print(f"shape ({a.rows}, {a.cols}) float64, best of {a.repeat}; jax {jax.__version__}, numpy {np.__version__}, scipy {scipy.__version__}")
    print(f"load average {load:.1f} before, {os.getloadavg()[0]:.1f} after, on {os.cpu_count()} CPUs")
    for k, v in t.items():
        print(f"{k:32s} {v:8.3f} s")
    for ours in ("kullback kb.kl (NumPy in)", "kullback kb.kl (jax.Array in)"):
        for peer in ("scipy.stats.entropy", "numpy.sum(rel_entr)", "numpy p*(log p - log q)"):
            print(f"{peer} / {ours}: {t[peer] / t[ours]:.2f}x")


if __name__ == "__main__":
    main()
