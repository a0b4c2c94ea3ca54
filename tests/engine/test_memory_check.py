"""A compiled program larger than the available memory is refused with one message before it
runs, instead of the operating system killing the process."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sgdlab
from sgdlab.engine import memory
from sgdlab.errors import ConfigError


def test_available_memory_is_read_from_the_system():
    free = memory.available_memory()
    assert free is None or free > 0


def test_a_program_is_checked_against_the_memory_available(monkeypatch):
    compiled = jax.jit(lambda a: (a @ a.T) @ a).lower(  # a @ a.T: a temporary buffer
        jax.ShapeDtypeStruct((512, 512), jnp.float32)).compile()
    need = compiled.memory_analysis().temp_size_in_bytes
    if jax.default_backend() != "cpu" or need == 0:
        pytest.fail("the test expects a CPU program with temporary buffers")
    monkeypatch.setattr(memory, "available_memory", lambda: need + 1)
    assert memory.check_fits(compiled, "the product") is compiled
    monkeypatch.setattr(memory, "available_memory", lambda: need // 2)
    with pytest.raises(ConfigError, match=r"the product needs 0\.0 GiB of working memory "
                                          r"\(XLA's estimate .*\), more than the 0\.0 GiB this "
                                          r"machine has available: lower the batch size"):
        memory.check_fits(compiled, "the product")
    monkeypatch.setattr(memory, "available_memory", lambda: None)  # no figure: not checked
    assert memory.check_fits(compiled, "the product") is compiled


def test_a_run_too_large_for_the_memory_is_one_message_and_leaves_no_directory(
        monkeypatch, tmp_path):
    from sgdlab.engine import setup
    monkeypatch.setattr(memory, "available_memory", lambda: 1024)
    # the parameters' own check (below) would refuse first: this one is about the program
    monkeypatch.setattr(setup, "check_state_fits", lambda nbytes, what: None)
    X = np.random.default_rng(0).random((64, 8, 8, 1)).astype(np.float32)
    with pytest.raises(ConfigError, match="one training step needs .* GiB of working memory"):
        sgdlab.fit(X, np.arange(64) % 2, model="cnn", channels=(4,), epochs=1,
                   out=tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_parameters_larger_than_the_memory_are_refused_before_they_are_allocated(
        monkeypatch, tmp_path):
    """--hidden 1048576,1048576 (4 TiB of weights) ended in an XLA out-of-memory traceback."""
    from sgdlab.engine import setup
    X = np.random.default_rng(0).random((64, 5)).astype(np.float32)
    allocated = []
    original = setup.RunSetup.init_params
    monkeypatch.setattr(setup.RunSetup, "init_params",
                        lambda self, given=None: allocated.append(1) or original(self, given))
    monkeypatch.setattr(memory, "available_memory", lambda: 10 ** 6)
    # 5 x 256 + 256 x 256 + 256 x 2 weights and biases: about 270 KB, x2 with the gradient,
    # plus momentum's copy: about 800 KB fit in 1 MB; 1024 wide layers do not
    sgdlab.fit(X, np.arange(64) % 2, model="mlp", hidden=(256, 256), optimizer="momentum",
               epochs=1, plots=False)
    with pytest.raises(ConfigError, match=r"the network 'mlp' needs 0\.0 GiB for its parameters, "
                                          r"their gradients and the optimiser's state, more than "
                                          r"the 0\.0 GiB this machine has available: make the "
                                          r"network smaller \(--hidden, --channels\)"):
        sgdlab.fit(X, np.arange(64) % 2, model="mlp", hidden=(1024, 1024), epochs=1,
                   out=tmp_path / "run")
    assert not (tmp_path / "run").exists() and len(allocated) == 2
    need = memory.state_bytes(*_mlp_and_optimizer((1024, 1024)))
    assert need == 2 * 4 * (5 * 1024 + 1024 + 1024 * 1024 + 1024 + 1024 * 2 + 2)  # sgd: no state


def _mlp_and_optimizer(hidden):
    import optax

    from sgdlab.models import mlp
    return mlp(hidden), jax.random.PRNGKey(0), 5, 2, optax.sgd(1.0)
