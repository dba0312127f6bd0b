"""Benchmark (issue 13): distillation losses at vocabulary scale, ours against PyTorch on this CPU.

Cases (float32):
- ``jsd``: the generalised JSD (β = ½) from logits (1024 × 152,064). Ours: ``kb.logits.generalized_jsd``
  (streamed). Torch: TRL's ``generalized_jsd_loss`` as written (log_softmax, logsumexp of the
  stacked mixture, two ``kl_div``), whole and in TRL's row chunks of 512; forward, and forward +
  backward with the student's gradient only.
- ``linear_kl`` / ``linear_jsd``: fused with the output layer, N tokens, hidden 1,024, vocabulary
  128,256, gradients for the student's h and w. Ours: ``kb.logits.linear_kl`` /
  ``linear_jensen_shannon``. Torch, unfused as users write it: teacher logits under ``no_grad``,
  student logits ``h @ w.T``, then ``kl_div`` on ``log_softmax`` (batchmean) or TRL's JSD, and
  ``backward()``.

Each measurement runs in a fresh process (no persistent compilation cache): **cold** is the first
call (tracing and compiling included), **warm** the best of the next ``--repeat`` calls. Memory:
peak RSS, sampled every 2 ms by a thread (psutil), above the RSS once the inputs exist; the warm
figure is the peak over the warm calls. Gradient outputs (the student's dW, dh: unavoidable) are
reported and also subtracted ("beyond grads"). RSS also counts JAX's fixed runtime cost (compiled
code, thread pools: ~70–90 MiB whatever the size), so ``--xla-memory`` prints, without running
anything, XLA's own account of each compiled program: its temporary buffers (what the program
allocates beyond its arguments and outputs), as a fraction of one (rows × vocab) logits array.
Needs the bench extra: pip install torch==2.13.0 psutil. Run: python benchmarks/bench_distill.py
"""

import argparse
import json
import os
import subprocess
import sys
import threading
import time

V_LOGITS = 152064
V_LINEAR, HIDDEN = 128256, 1024
if os.environ.get("BENCH_DISTILL_SMOKE"):  # a quick check of the script itself, tiny sizes
    V_LOGITS, V_LINEAR, HIDDEN = 1520, 1282, 64


def _logit_inputs(n, v):
    import numpy as np

    rng = np.random.default_rng(0)
    s = rng.standard_normal((n, v), dtype=np.float32) * 3
    t = s + rng.standard_normal((n, v), dtype=np.float32)
    return t, s  # teacher, student


def _linear_inputs(n):
    import numpy as np

    rng = np.random.default_rng(0)
    w_t = rng.standard_normal((V_LINEAR, HIDDEN), dtype=np.float32) / np.float32(HIDDEN ** 0.5 / 3)
    w_s = w_t + rng.standard_normal((V_LINEAR, HIDDEN), dtype=np.float32) / np.float32(HIDDEN ** 0.5)
    h = rng.standard_normal((n, HIDDEN), dtype=np.float32)
    return h, w_t, h.copy(), w_s


def _trl_jsd(torch, s_logits, t_logits, beta=0.5):
    """TRL's GKDTrainer.generalized_jsd_loss (β strictly between 0 and 1), summed over rows."""
    F = torch.nn.functional
    s_lp, t_lp = F.log_softmax(s_logits, -1), F.log_softmax(t_logits, -1)
    b = torch.tensor(beta, dtype=s_lp.dtype)
    mix = torch.logsumexp(torch.stack([s_lp + torch.log(1 - b), t_lp + torch.log(b)]), dim=0)
    jsd = b * F.kl_div(mix, t_lp, reduction="none", log_target=True) + (1 - b) * F.kl_div(
        mix, s_lp, reduction="none", log_target=True)
    return jsd.sum()


def _torch_jobs(case, n, chunked=False):
    import torch

    F = torch.nn.functional
    if case == "jsd":
        t, s = (torch.from_numpy(x) for x in _logit_inputs(n, V_LOGITS))
        s.requires_grad_()

        def loss():
            if not chunked:
                return _trl_jsd(torch, s, t) / n
            return sum(_trl_jsd(torch, s[i:i + 512], t[i:i + 512]) for i in range(0, n, 512)) / n

        def fwd():
            with torch.no_grad():
                return float(loss())

        def fwd_bwd():
            s.grad = None
            out = loss()
            out.backward()
            return float(out.detach())

        return {"forward": fwd, "forward+backward": fwd_bwd}, (t, s), {"grad_mib": n * V_LOGITS * 4 / 2**20}
    h_t, w_t, h_s, w_s = (torch.from_numpy(x) for x in _linear_inputs(n))
    h_s.requires_grad_()
    w_s.requires_grad_()

    def fwd_bwd():
        h_s.grad = w_s.grad = None
        with torch.no_grad():
            t_logits = h_t @ w_t.T
        s_logits = h_s @ w_s.T
        if case == "linear_kl":
            out = F.kl_div(F.log_softmax(s_logits, -1), F.log_softmax(t_logits, -1), log_target=True, reduction="batchmean")
        else:
            out = _trl_jsd(torch, s_logits, t_logits) / n
        out.backward()
        return float(out.detach())

    return {"forward+backward": fwd_bwd}, (h_t, w_t, h_s, w_s), {"grad_mib": (V_LINEAR + n) * HIDDEN * 4 / 2**20}


def _ours_jobs(case, n):
    import jax
    import jax.numpy as jnp

    import kullback as kb

    if case == "jsd":
        t, s = (jnp.asarray(x) for x in _logit_inputs(n, V_LOGITS))

        def loss(t, s):
            return kb.logits.generalized_jsd(t, s, beta=0.5, reduction="batchmean")

        f, g = jax.jit(loss), jax.jit(jax.value_and_grad(loss, argnums=1))

        def fwd():
            return float(f(t, s))

        def fwd_bwd():
            value, grad = g(t, s)
            jax.block_until_ready(grad)
            return float(value)

        return {"forward": fwd, "forward+backward": fwd_bwd}, (t, s), {"grad_mib": n * V_LOGITS * 4 / 2**20}
    arrays = tuple(jnp.asarray(x) for x in _linear_inputs(n))
    fn = kb.logits.linear_kl if case == "linear_kl" else kb.logits.linear_jensen_shannon
    g = jax.jit(jax.value_and_grad(lambda h_t, w_t, h_s, w_s: fn(h_t, w_t, h_s, w_s, reduction="batchmean"), (2, 3)))

    def fwd_bwd():
        value, grads = g(*arrays)
        jax.block_until_ready(grads)
        return float(value)

    return {"forward+backward": fwd_bwd}, arrays, {"grad_mib": (V_LINEAR + n) * HIDDEN * 4 / 2**20}


class _Peak:
    """Peak RSS of this process, sampled every 2 ms while active."""

    def __init__(self):
        import psutil

        self.proc = psutil.Process()
        self.peak = self.proc.memory_info().rss
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self.done.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(0.002)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.done.set()
        self.thread.join()


def _child(lib, case, n, what, repeat):
    import gc

    import psutil

    jobs, keep, meta = _torch_jobs(case, n, chunked=(lib == "torch_chunked")) if lib.startswith("torch") else _ours_jobs(case, n)
    if not lib.startswith("torch"):
        import jax

        jax.block_until_ready(keep)
    gc.collect()
    rss0 = psutil.Process().memory_info().rss
    with _Peak() as cold_peak:
        t0 = time.perf_counter()
        value = jobs[what]()
        cold = time.perf_counter() - t0
    times = []
    with _Peak() as warm_peak:
        warm_peak.peak = rss0
        for _ in range(repeat):
            t0 = time.perf_counter()
            jobs[what]()
            times.append(time.perf_counter() - t0)
    mib = 2**20
    print(json.dumps({
        "cold_s": cold, "warm_s": min(times), "value": value, "cold_extra_mib": (cold_peak.peak - rss0) / mib,
        "warm_extra_mib": (warm_peak.peak - rss0) / mib, "inputs_mib": sum(x.nbytes for x in keep) / mib, **meta,
    }))


def _run(lib, case, n, what, repeat):
    env = {k: v for k, v in os.environ.items() if k not in ("KULLBACK_CACHE_DIR", "JAX_COMPILATION_CACHE_DIR")}
    out = subprocess.run(
        [sys.executable, __file__, "--repeat", str(repeat), "--child", lib, case, str(n), what.replace(" ", "_")],
        capture_output=True, text=True, env=env,
    )
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else f"exit {out.returncode}"}
    return json.loads(out.stdout.strip().splitlines()[-1])


PLAN = {
    "jsd": [(1024, "forward", ("kullback", "torch", "torch_chunked")), (1024, "forward+backward", ("kullback", "torch", "torch_chunked"))],
    "linear_kl": [(1024, "forward+backward", ("kullback", "torch")), (4096, "forward+backward", ("kullback", "torch"))],
    "linear_kl_1024": [(1024, "forward+backward", ("kullback", "torch"))],
    "linear_jsd": [(1024, "forward+backward", ("kullback", "torch"))],
}


def _xla_memory():
    """XLA's buffer assignment of our compiled programs: temporary bytes beyond arguments and outputs."""
    import jax
    import jax.numpy as jnp

    import kullback as kb

    f32 = jnp.float32
    print("XLA buffer assignment (compiled, not run): temporaries beyond arguments and outputs")
    for n in (1024, 4096, 8192):
        for name in ("linear_kl", "linear_jensen_shannon"):
            fn = getattr(kb.logits, name)
            g = jax.jit(jax.value_and_grad(lambda h_t, w_t, h_s, w_s: fn(h_t, w_t, h_s, w_s, reduction="batchmean"), (2, 3)))
            shapes = [jax.ShapeDtypeStruct((n, HIDDEN), f32), jax.ShapeDtypeStruct((V_LINEAR, HIDDEN), f32)] * 2
            m = g.lower(*shapes).compile().memory_analysis()
            logits = n * V_LINEAR * 4
            print(f"  {name:22s} rows {n:5d}: temp {m.temp_size_in_bytes / 2**20:6.1f} MiB = "
                  f"{m.temp_size_in_bytes / logits:.3f} x one logits array ({logits / 2**20:.0f} MiB); "
                  f"outputs {m.output_size_in_bytes / 2**20:.0f} MiB (the gradients)")
    n = 1024
    shapes = [jax.ShapeDtypeStruct((n, V_LOGITS), f32)] * 2
    for label, g in (("forward", jax.jit(lambda t, s: kb.logits.generalized_jsd(t, s, beta=0.5, reduction="batchmean"))),
                     ("forward+backward", jax.jit(jax.value_and_grad(
                         lambda t, s: kb.logits.generalized_jsd(t, s, beta=0.5, reduction="batchmean"), argnums=1)))):
        m = g.lower(*shapes).compile().memory_analysis()
        inputs = 2 * n * V_LOGITS * 4
        print(f"  generalized_jsd {label:16s} {n} x {V_LOGITS}: temp {m.temp_size_in_bytes / 2**20:6.1f} MiB = "
              f"{m.temp_size_in_bytes / inputs:.3f} x inputs")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--xla-memory", action="store_true", help="print XLA's temporary-buffer sizes and exit")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--child", nargs=4)
    ap.add_argument("--cases", default="jsd,linear_kl,linear_jsd")
    a = ap.parse_args()
    if a.xla_memory:
        return _xla_memory()
    if a.child:
        lib, case, n, what = a.child
        return _child(lib, case, int(n), what.replace("_", " ").replace("forward backward", "forward+backward"), a.repeat)
    import jax
    import torch

    print(f"jax {jax.__version__}, torch {torch.__version__} ({torch.get_num_threads()} threads), float32, "
          f"cold = first call in a fresh process, warm = best of {a.repeat}; load {os.getloadavg()[0]:.2f}")
    results = []
    for case in a.cases.split(","):
        for n, what, libs in PLAN[case]:
            for lib in libs:
                case = case.replace("_1024", "")
                r = {"case": case, "rows": n, "pass": what, "lib": lib, **_run(lib, case, n, what, a.repeat)}
                results.append(r)
                if "error" in r:
                    print(f"{case} n={n} {what} {lib}: failed: {r['error']}", flush=True)
                    continue
                beyond = r["warm_extra_mib"] - (r["grad_mib"] if what != "forward" else 0.0)
                print(f"{case} n={n} {what:17s} {lib:14s} cold {r['cold_s']:7.2f} s  warm {r['warm_s']:7.2f} s  "
                      f"extra {r['warm_extra_mib']:7.0f} MiB (beyond grads {beyond:6.0f}; cold {r['cold_extra_mib']:6.0f}) "
                      f"inputs {r['inputs_mib']:.0f} MiB  value {r['value']:.6f}", flush=True)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
