"""Lab fixtures: a compilation cache scoped to the tests that repeat identical programs."""

import pytest


@pytest.fixture(scope="module")
def compile_cache(tmp_path_factory):
    """Seeds of one setting compile the same program: load it from disk after the first.

    Switched off again afterwards, so no other test module sees a cache.
    """
    from sgdlab.lab.compile_cache import disable_compile_cache, enable_compile_cache
    enable_compile_cache(tmp_path_factory.mktemp("compile-cache"))
    yield
    disable_compile_cache()
