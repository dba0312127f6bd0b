"""Benchmark (issue 14): a logistic regression on more data than the workers' memory, streamed from Parquet.

Data: n × p float64 features (Gaussian) and 0/1 labels from a logistic model, written once to
``--files`` Parquet files (uncompressed: random floats do not compress; reused by later runs).
The cluster:
``LocalCluster(n_workers=2, threads_per_worker=1, memory_limit=--memory-limit)``, so the data are
several times the workers' memory together; nothing is persisted, each pass re-reads the files.
A thread polls the workers' resident memory every 0.25 s (``client.run`` of psutil) for the peak.

Then the same rows are read into one NumPy array on the client (file by file) and fitted in
memory: the coefficients and standard errors are compared.

Run: python benchmarks/bench_dask_stream.py [--rows 10000000] [--features 50] [--files 32]
     [--memory-limit 1GB] [--folder /tmp/kb_stream] [--rewrite] [--no-memory-fit]
"""

import argparse
import glob
import os
import threading
import time

import numpy as np


def write(folder, n, p, files, seed=0):
    """The Parquet files, one at a time (never all rows in memory); the true coefficients."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    beta = rng.normal(size=p) * 0.3
    os.makedirs(folder, exist_ok=True)
    for i, rows in enumerate(np.array_split(np.arange(n), files)):
        X = rng.normal(size=(rows.size, p))
        y = (rng.uniform(size=rows.size) < 1 / (1 + np.exp(-(X @ beta + 0.3)))).astype(np.float64)
        table = pa.table({**{f"x{j}": X[:, j] for j in range(p)}, "y": y})
        pq.write_table(table, f"{folder}/part{i:03d}.parquet", compression="none")
    return beta


def rss():
    import psutil

    return psutil.Process().memory_info().rss


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--features", type=int, default=50)
    parser.add_argument("--files", type=int, default=32)
    parser.add_argument("--memory-limit", default="1GB")
    parser.add_argument("--folder", default="/tmp/kb_stream")
    parser.add_argument("--no-memory-fit", action="store_true")
    parser.add_argument("--rewrite", action="store_true", help="write the files even if --folder has them")
    args = parser.parse_args()

    import jax

    jax.config.update("jax_enable_x64", True)
    import dask.dataframe as dd
    from distributed import Client, LocalCluster

    import kullback as kb

    n, p = args.rows, args.features
    names = [f"x{j}" for j in range(p)]
    t0 = time.perf_counter()
    files = sorted(glob.glob(f"{args.folder}/part*.parquet"))
    reuse = len(files) == args.files and not args.rewrite  # the files of an earlier run with the same --files
    if not reuse:
        write(args.folder, n, p, args.files)
        files = sorted(glob.glob(f"{args.folder}/part*.parquet"))
    size = sum(os.path.getsize(f) for f in files)
    print(f"{'reused' if reuse else 'wrote'} {len(files)} files, {size / 1e9:.2f} GB, in {time.perf_counter() - t0:.0f} s "
          f"({n:,} x {p} float64 + labels)")

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                           memory_limit=args.memory_limit)
    client = Client(cluster)
    peak, done = {}, threading.Event()

    def poll():
        while not done.is_set():
            try:
                for addr, value in client.run(rss).items():
                    peak[addr] = max(peak.get(addr, 0), value)
            except Exception:  # a worker restarting: the run says so below
                pass
            time.sleep(0.25)

    threading.Thread(target=poll, daemon=True).start()
    ddf = dd.read_parquet(files)
    t0 = time.perf_counter()
    try:
        fit = kb.LogisticRegression(tol=1e-8).fit(ddf[names], ddf["y"])
    except ValueError as err:  # the start-time memory check: the workers cannot hold the blocks
        done.set()
        print(f"refused after {time.perf_counter() - t0:.1f} s: {err}")
        client.close()
        cluster.close()
        return
    wall = time.perf_counter() - t0
    done.set()
    limit = cluster.workers[next(iter(cluster.workers))].memory_manager.memory_limit
    print(f"kullback on Dask, not persisted: {wall:.1f} s, {fit.num_passes_} passes of the solver "
          f"(the rows counted from Parquet metadata), {int(fit.n_iter_[0])} Newton steps, "
          f"converged: {fit.converged_}")
    print("peak worker RSS: " + ", ".join(f"{v / 1e9:.2f} GB" for v in peak.values())
          + f" (memory_limit {limit / 1e9:.2f} GB each; data {size / 1e9:.2f} GB)")
    client.close()
    cluster.close()

    if args.no_memory_fit:
        return
    import pyarrow.parquet as pq

    X = np.empty((n, p))
    y = np.empty(n)
    start = 0
    for f in files:  # read in chunks, file by file, into one array
        table = pq.read_table(f)
        m = table.num_rows
        for j, name in enumerate(names):
            X[start:start + m, j] = table.column(name).to_numpy()
        y[start:start + m] = table.column("y").to_numpy()
        start += m
        del table
    t0 = time.perf_counter()
    mem = kb.LogisticRegression(tol=1e-8).fit(X, y)
    t_mem = time.perf_counter() - t0
    theta_d, theta_m = np.r_[fit.intercept_, fit.coef_[0]], np.r_[mem.intercept_, mem.coef_[0]]
    coef = np.max(np.abs(theta_d - theta_m)) / np.max(np.abs(theta_m))
    se = np.max(np.abs(fit.coef_stderr_ - mem.coef_stderr_) / mem.coef_stderr_)
    print(f"in memory on the same rows (read file by file into one array): {t_mem:.1f} s, "
          f"{int(mem.n_iter_[0])} Newton steps; Dask vs in memory: coef. {coef:.1e}, SE {se:.1e} (relative), "
          f"log-lik {abs(fit.loglike_ / mem.loglike_ - 1):.1e}")


if __name__ == "__main__":
    main()
