"""Test setup: float64 is the reference precision; hypothesis kept quick on 2 cores."""

import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=1")

import jax  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

jax.config.update("jax_enable_x64", True)

# Compiled programs are cached on disk in the checkout (.jax_cache/, ignored by git): the two
# xdist workers reuse what the other compiled, and a second run of the suite compiles little.
# Eviction on (a size cap) makes JAX lock the cache files, so concurrent workers never read a
# half-written entry. KULLBACK_TEST_JAX_CACHE="" turns it off; a path moves it.
_CACHE = os.environ.get("KULLBACK_TEST_JAX_CACHE", os.path.join(os.path.dirname(os.path.abspath(__file__)), ".jax_cache"))
if _CACHE:
    jax.config.update("jax_compilation_cache_dir", _CACHE)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.2)
    jax.config.update("jax_compilation_cache_max_size", 2 * 2**30)

settings.register_profile(
    "kullback",
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)
settings.load_profile("kullback")
