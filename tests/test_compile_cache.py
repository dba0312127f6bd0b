"""kb.enable_compile_cache: a later process loads what an earlier one compiled; processes share it."""

import functools
import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import sys, jax, jax.numpy as jnp, numpy as np
    import kullback as kb
    from kullback._compile import count_compiles
    folder = kb.enable_compile_cache(sys.argv[1])

    @jax.jit
    def f(x):  # big enough to take more than the 0.01 s threshold to compile
        for i in range(60):
            x = jnp.sin(x @ x.T + i) / (1.0 + jnp.cos(x).sum())
        return x

    with count_compiles() as c:
        f(np.ones((8, 8))).block_until_ready()
    print(c.count, c.loaded, folder)
""")


def _run(folder, env=None):
    return subprocess.Popen([sys.executable, "-c", SCRIPT, str(folder)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})})


def test_a_second_process_loads_the_compiled_program(tmp_path):
    first = _run(tmp_path).communicate(timeout=120)[0].split()
    assert (int(first[0]), int(first[1])) == (1, 0) and first[2] == str(tmp_path)
    assert any(name.endswith("-cache") for name in os.listdir(tmp_path))
    second = _run(tmp_path).communicate(timeout=120)[0].split()
    assert (int(second[0]), int(second[1])) == (0, 1), "the program was compiled again instead of loaded"


def test_processes_share_one_folder(tmp_path):
    procs = [_run(tmp_path) for _ in range(3)]
    outs = [p.communicate(timeout=180) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-500:] for o in outs]


def test_a_folder_given_to_jax_is_kept(tmp_path):
    script = (f"import jax; jax.config.update('jax_compilation_cache_dir', {str(tmp_path / 'mine')!r}); "
              "import kullback as kb; print(kb.enable_compile_cache())")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == str(tmp_path / "mine")


def test_programs_taking_distributions_lower_the_same_in_every_process():
    """numpyro's leaf order followed the per-process string hashing: the same program lowered
    differently in two processes (two cache keys, a compile in each). With kullback imported the
    leaves come sorted: the lowered text is identical under two hash seeds."""
    import os
    import subprocess
    import sys

    code = (
        "import kullback.measure, jax, jax.numpy as jnp, numpyro.distributions as dist, hashlib\n"
        "d = dist.MultivariateNormal(jnp.zeros(3), scale_tril=jnp.eye(3))\n"
        "s = jax.jit(lambda d, x: (d, d.log_prob(x))).lower(d, jnp.ones(3)).as_text()\n"
        "print(hashlib.sha256(s.encode()).hexdigest())\n"
    )
    out = set()
    for seed in ("1", "2", "3"):
        env = dict(os.environ, PYTHONHASHSEED=seed, JAX_PLATFORMS="cpu")
        run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        out.add(run.stdout.strip())
    assert len(out) == 1, out


def test_call_small_compiles_once_and_equals_jit():
    """call_small: the jitted function's result, one compile per signature (a new shape is a new
    one), and a small program compiled without LLVM's optimisation passes."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from kullback._compile import _aot, call_small, count_compiles

    @functools.partial(jax.jit, static_argnames=("power",))
    def f(x, scale, *, power):
        return jnp.sum(jnp.sin(x) ** power) * scale

    x, x2, ones = (jnp.asarray(v) for v in (np.linspace(0.0, 1.0, 7), np.linspace(0.0, 2.0, 7), np.ones(9)))
    with count_compiles() as first:
        a = call_small(f, x, 2.0, power=3)
    with count_compiles() as again:
        b = call_small(f, x2, 3.0, power=3)
    np.testing.assert_allclose(a, f(x, 2.0, power=3), rtol=1e-12)
    np.testing.assert_allclose(b, f(x2, 3.0, power=3), rtol=1e-12)
    assert first.events >= 1 and again.events == 0
    with count_compiles() as other:
        call_small(f, ones, 1.0, power=3)
    assert other.events >= 1
    keys = [k for k in _aot if k[0] is f]
    assert len(keys) == 2
