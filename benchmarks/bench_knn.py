"""Benchmark (issue 4): k-NN KL of two 20,000 × 5 sample sets, kullback vs universal-divergence.

Both compute the Wang–Kulkarni–Verdú 1-NN estimate (d/n) Σ log(ν/ρ) + log(m/(n−1)); ours with
``error="terms"`` (the value and the cheap per-point error) and with the default subsample
error, theirs with ``universal_divergence.estimate(x, y, k=1)`` (n_jobs=1). Same values to 1e-8
are asserted. Best of N. Run: python benchmarks/bench_knn.py
"""

import argparse
import time

import numpy as np
import universal_divergence

from kullback.measure import kl_from_samples


def best(fn, repeat):
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--d", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(a.n, a.d))
    y = 0.3 + 1.2 * rng.normal(size=(a.n, a.d))
    t_ours, ours = best(lambda: float(kl_from_samples(x, y, error="terms")), a.repeat)
    t_sub, sub = best(lambda: float(kl_from_samples(x, y)), a.repeat)
    t_two, two = best(lambda: float(kl_from_samples(x, y, error="terms", workers=-1)), a.repeat)
    assert two == ours
    t_ud, theirs = best(lambda: float(universal_divergence.estimate(x, y, k=1)), 1)
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-8)
    assert ours == sub
    print(f"{a.n} x {a.d} vs {a.n} x {a.d}, k = 1; best of {a.repeat} (universal-divergence: 1 run)")
    print(f"kullback kl_from_samples(error='terms'): {t_ours:.3f} s  value {ours:.10f}")
    print(f"kullback kl_from_samples (subsample stderr): {t_sub:.3f} s")
    print(f"kullback kl_from_samples(error='terms', workers=-1): {t_two:.3f} s")
    print(f"universal-divergence estimate(k=1):      {t_ud:.3f} s  value {theirs:.10f}")
    print(f"speed-up: {t_ud / t_ours:.1f}x (terms), {t_ud / t_sub:.1f}x (with subsample stderr); |diff| = {abs(ours - theirs):.2e}")


if __name__ == "__main__":
    main()
