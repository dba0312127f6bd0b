"""Fixtures shared by the test modules."""

import jax
import pytest


@pytest.fixture
def no_persistent_cache():
    """The persistent compilation cache off for one test (a cache hit emits no compile event, so
    compile counts are only meaningful without it), restored afterwards."""
    from jax._src import compilation_cache

    folder = jax.config.jax_compilation_cache_dir
    jax.config.update("jax_compilation_cache_dir", None)
    compilation_cache.reset_cache()
    try:
        yield
    finally:
        jax.config.update("jax_compilation_cache_dir", folder)
        compilation_cache.reset_cache()
