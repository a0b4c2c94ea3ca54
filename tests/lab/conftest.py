"""Lab fixtures: a compilation cache scoped to the tests that repeat identical programs."""

import pytest


@pytest.fixture(scope="module")
def compile_cache(tmp_path_factory):
    """Seeds of one setting compile the same program: load it from disk after the first.

    The previous setting is back afterwards, so no other test module sees this cache.
    """
    from sgdlab.lab.compile_cache import compile_cache_in
    with compile_cache_in(tmp_path_factory.mktemp("compile-cache")):
        yield
