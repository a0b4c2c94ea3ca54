"""Examples of any shape through the engine: images train in memory, streamed, fed by a
placement, resumed bit for bit, saved and loaded, and gradient-checked in float64."""

import shutil

import jax
import numpy as np
import pytest
from sklearn.datasets import load_digits

import sgdlab
from helpers import back_to_a_middle_checkpoint
from sgdlab import TrainConfig
from sgdlab.data import Dataset, from_arrays, split
from sgdlab.engine import train
from sgdlab.engine.setup import model_input, resolve_model
from sgdlab.engine.stream_fit import train_parallel
from sgdlab.grad import check_model_gradient
from sgdlab.losses import encode_targets

SMALL_CNN = dict(model="cnn", channels=(4, 8), kernel=3, hidden=(32,))


@pytest.fixture(scope="module")
def digit_images():
    d = load_digits()
    return d.images[..., None].astype(np.float32), d.target


def test_model_input_keeps_rows_as_an_int_and_images_as_a_shape():
    assert model_input((64,)) == 64
    assert model_input((8, 8, 1)) == (8, 8, 1)


def test_a_cnn_reaches_95_percent_on_the_digits_as_images(digit_images):
    """30 epochs of the built-in cnn: 0.955 to 0.983 test accuracy over seeds 0 to 3."""
    X, y = digit_images
    r = sgdlab.fit(X, y, model="cnn", batch_size=32, epochs=30, lr=0.05, test_fraction=0.2,
                   validation_fraction=0.1, plots=False)
    assert r.status == "completed"
    assert r.extra["test_accuracy"] >= 0.95
    assert r.example_shape == (8, 8, 1)


def test_an_mlp_on_images_equals_the_mlp_on_the_flattened_rows(digit_images):
    X, y = digit_images
    cfg = TrainConfig(model="mlp", hidden=(16,), epochs=2, batch_size=50, standardize=False,
                      eval_every="1 epoch")
    flat = train(from_arrays(X.reshape(len(X), -1), y), None, cfg)
    images = train(from_arrays(X, y), None, cfg)
    for a, b in zip(jax.tree_util.tree_leaves(flat.params),
                    jax.tree_util.tree_leaves(images.params)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert flat.steps == images.steps


def test_images_are_standardised_per_channel(digit_images):
    X, y = digit_images
    rgbish = np.concatenate([X, 10 * X + 3], axis=-1)  # two channels on different scales
    r = train(from_arrays(rgbish, y), None, TrainConfig(**SMALL_CNN, epochs=1))
    assert r.standardizer.mean.shape == (2,)
    np.testing.assert_allclose(r.standardizer.mean[1], 10 * X.mean() + 3, rtol=1e-4)


def test_fed_batches_equal_gathered_batches_for_images(digit_images):
    """The fed kernel (streaming, several processes) and the gathering kernel take the same
    steps on N-D examples."""
    X, y = digit_images
    data = from_arrays(X[:640], y[:640])
    cfg = TrainConfig(**SMALL_CNN, batch_size=32, epochs=2, sampling="sequential",
                      eval_every="1 epoch", chunk_steps=10)
    memory = train(data, None, cfg)
    from sgdlab.engine.batched import LocalPlacement
    fed = train_parallel(data, None, cfg, placement=LocalPlacement())
    for a, b in zip(jax.tree_util.tree_leaves(memory.params),
                    jax.tree_util.tree_leaves(fed.params)):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6)


def test_a_cnn_run_resumes_bit_identically(digit_images, tmp_path):
    X, y = digit_images
    job = dict(**SMALL_CNN, batch_size=32, epochs=3, lr=0.05, checkpoint_every="20 steps",
               keep_checkpoints=100, plots=False)
    ref = tmp_path / "ref"
    whole = sgdlab.fit(X, y, out=ref, **job)
    run = tmp_path / "run"
    shutil.copytree(ref, run)
    middle = back_to_a_middle_checkpoint(run, whole.steps)
    again = sgdlab.fit(X, y, resume=run, plots=False)
    assert again.extra["resumed_from_step"] == middle
    for a, b in zip(jax.tree_util.tree_leaves(whole.params),
                    jax.tree_util.tree_leaves(again.params)):
        np.testing.assert_array_equal(a, b)


def test_a_saved_cnn_predicts_the_same_after_loading(digit_images, tmp_path):
    X, y = digit_images
    r = sgdlab.fit(X, y, out=tmp_path / "run", **SMALL_CNN, epochs=2, plots=False)
    model = sgdlab.load(tmp_path / "run")
    assert model.example_shape == (8, 8, 1)
    np.testing.assert_array_equal(model.predict(X[:50]), r.predict(X[:50]))
    # flattened rows (as a CSV holds them) are taken too; a wrong shape is one message
    np.testing.assert_array_equal(model.predict(X[:50].reshape(50, -1)), r.predict(X[:50]))
    with pytest.raises(sgdlab.errors.DataError, match=r"examples of shape \(8, 8, 1\)"):
        model.predict(X[:5, :4])


def test_gradcheck_passes_for_the_cnn_in_float64(digit_images):
    X, y = digit_images
    cfg = TrainConfig(**SMALL_CNN)
    model, loss = resolve_model(cfg, n_classes=10)
    params = model.init(jax.random.PRNGKey(0), model_input(X.shape[1:]), 10)
    report = check_model_gradient(model, loss, params, X[:16] / 16.0,
                                  np.asarray(encode_targets(loss, y[:16], 10)), n_coords=40)
    assert report.passed, report.rows()


def test_split_and_subset_keep_the_example_shape(digit_images):
    X, y = digit_images
    parts = split(Dataset(X, y, "classification", tuple(range(10))), validation=0.2, seed=0)
    assert parts.train.X.shape[1:] == parts.validation.X.shape[1:] == (8, 8, 1)


def test_random_search_takes_images(digit_images):
    X, y = digit_images
    r = sgdlab.fit(X, y, **SMALL_CNN, method="random-local", attempts=20, plots=False)
    assert r.status == "completed" and r.example_shape == (8, 8, 1)
    assert r.predict(X[:3]).shape == (3,)
