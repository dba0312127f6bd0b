"""Benchmark 2 (issue 3): KL from logits, ours (streamed) against PyTorch on CPU.

PyTorch: kl_div(log_softmax(s), log_softmax(t), log_target=True, reduction='batchmean').
Time: forward, forward+backward with gradients for both logits, and forward+backward for the student only
(distillation: the teacher is frozen; torch: the teacher tensor without requires_grad; ours: argnums for the
student only), best of N, side by side in one process. Memory: peak RSS (sampled every 2 ms)
of a fresh subprocess per measurement minus its RSS once the inputs exist (allocators keep memory).
Needs the bench extra: pip install torch==2.13.0 psutil. Run: python benchmarks/bench_logits.py
"""

import argparse
import json
import subprocess
import sys
import time

SHAPES = [(4096, 32000), (1024, 152064)]


def _inputs(n, v):
    import numpy as np

    rng = np.random.default_rng(0)
    s = rng.standard_normal((n, v), dtype=np.float32) * 3
    t = s + rng.standard_normal((n, v), dtype=np.float32)
    return s, t


def _jobs(lib, n, v):
    """Return {name: callable} for one library, inputs created inside."""
    s, t = _inputs(n, v)
    if lib == "torch":
        import torch
        import torch.nn.functional as F

        ts, tt = torch.from_numpy(s), torch.from_numpy(t)

        def fwd():
            with torch.no_grad():
                return float(F.kl_div(F.log_softmax(ts, -1), F.log_softmax(tt, -1), log_target=True, reduction="batchmean"))

        def fwd_bwd():
            a, b = ts.clone().requires_grad_(), tt.clone().requires_grad_()
            loss = F.kl_div(F.log_softmax(a, -1), F.log_softmax(b, -1), log_target=True, reduction="batchmean")
            loss.backward()
            return float(loss)

        def fwd_bwd_student():
            a = ts.clone().requires_grad_()  # student; the teacher tt stays without requires_grad
            loss = F.kl_div(F.log_softmax(a, -1), F.log_softmax(tt, -1), log_target=True, reduction="batchmean")
            loss.backward()
            return float(loss)

        return {"forward": fwd, "forward+backward": fwd_bwd, "forward+backward student": fwd_bwd_student}, (ts, tt)
    import jax
    import jax.numpy as jnp

    import kullback as kb

    js, jt = jnp.asarray(s), jnp.asarray(t)
    del s, t
    # torch's call is KL(softmax t ‖ softmax s): same order here, math order (t first)
    grad = jax.jit(jax.value_and_grad(lambda a, b: kb.logits.kl(a, b, reduction="mean"), argnums=(0, 1)))
    grad_student = jax.jit(jax.value_and_grad(lambda a, b: kb.logits.kl(a, b, reduction="mean"), argnums=1))

    def fwd():
        return float(kb.logits.kl(jt, js, reduction="mean"))

    def fwd_bwd():
        value, grads = grad(jt, js)
        jax.block_until_ready(grads)
        return float(value)

    def fwd_bwd_student():
        value, grad_s = grad_student(jt, js)
        jax.block_until_ready(grad_s)
        return float(value)

    return {"forward": fwd, "forward+backward": fwd_bwd, "forward+backward student": fwd_bwd_student}, (js, jt)


def _child(lib, n, v, what, repeat):
    import gc

    jobs, keep = _jobs(lib, n, v)
    if lib != "torch":
        import jax

        jax.block_until_ready(keep)  # the host-to-device copy is asynchronous
    gc.collect()
    import threading

    import psutil

    proc = psutil.Process()
    rss0 = proc.memory_info().rss
    peak = [rss0]
    done = threading.Event()

    def sample():  # peak RSS while the measured calls run (ru_maxrss remembers the input set-up)
        while not done.is_set():
            peak[0] = max(peak[0], proc.memory_info().rss)
            time.sleep(0.002)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    value = jobs[what]()  # warm-up (compiles) and value
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        jobs[what]()
        times.append(time.perf_counter() - t0)
    done.set()
    sampler.join()
    extra_kib = (peak[0] - rss0) / 1024
    print(json.dumps({"time": min(times), "extra_mib": extra_kib / 1024, "value": value}))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--child", nargs=4)
    ap.add_argument("--passes", default="forward,forward+backward,forward+backward student")
    a = ap.parse_args()
    if a.child:
        lib, n, v, what = a.child
        what = what.replace("_", " ")
        return _child(lib, int(n), int(v), what, a.repeat)
    import jax
    import torch

    print(f"jax {jax.__version__}, torch {torch.__version__}, best of {a.repeat}, float32")
    for n, v in SHAPES:
        for what in a.passes.split(","):
            res = {}
            for lib in ("kullback", "torch"):
                out = subprocess.run(
                    [sys.executable, __file__, "--repeat", str(a.repeat), "--child", lib, str(n), str(v), what.replace(" ", "_")],
                    capture_output=True, text=True, check=True,
                )
                res[lib] = json.loads(out.stdout.strip().splitlines()[-1])
            k, t = res["kullback"], res["torch"]
            print(
                f"({n}, {v}) {what:25s} kullback {k['time']:.3f} s, {k['extra_mib']:.0f} MiB | "
                f"torch {t['time']:.3f} s, {t['extra_mib']:.0f} MiB | speed-up {t['time'] / k['time']:.2f}x, "
                f"memory ratio {k['extra_mib'] / max(t['extra_mib'], 1e-9):.3f} | values {k['value']:.6f} vs {t['value']:.6f}"
            )


if __name__ == "__main__":
    main()
