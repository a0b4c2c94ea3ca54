"""Fuzzing a saved model: hostile ``model.json`` descriptions and ``params.npz`` files are
loaded (``sgdlab.load``) and, when accepted, predicted with. Every outcome is a model that
predicts one finite label per row, or a documented refusal (:class:`sgdlab.SgdlabError`);
any other exception, a hang or an allocation the file chose fails the test.

Descriptions: a valid one with fields replaced by arbitrary JSON values (huge and negative
integers, floats, NaN, text, nested lists and objects), fields deleted, the network's
options replaced, and its text with bytes flipped, cut or inserted. Parameters: a valid
archive with bytes flipped, cut or inserted, and archives of arrays of any dtype, shape and
values (NaN, inf) under the network's names. The number of examples each fuzzer ran is
printed in the test summary ("reliability counts").
"""

import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import sgdlab
from test_rel_fuzz import fuzz, mutated

ROOT = Path(tempfile.mkdtemp(prefix="sgdlab-model-fuzz-"))
GOOD = ROOT / "good"
sgdlab.fit("gaussian:n=90,d=4,n_classes=3", model="mlp", hidden=(5,), epochs=1, out=GOOD,
           plots=False, checkpoint_every="end")
DESCRIPTION = json.loads((GOOD / "model.json").read_text())
PARAMS = (GOOD / "params.npz").read_bytes()
with np.load(GOOD / "params.npz") as _z:
    ARRAYS = {k: _z[k] for k in _z.files}
RUN = ROOT / "run"
shutil.copytree(GOOD, RUN)


def check_loaded(model):
    """An accepted model predicts one finite label (or value) per row of its input shape."""
    X = np.linspace(-1, 1, 3 * int(np.prod(model.input_shape)), dtype=np.float32)
    pred = model.predict(X.reshape((3, *model.input_shape)))
    assert pred.shape == (3,)
    if model.task == "classification":
        assert set(pred.tolist()) <= set(model.classes)
    else:
        assert np.isfinite(pred.astype(float)).all()


def load_with(description: bytes | None = None, params: bytes | None = None):
    (RUN / "model.json").write_bytes(DESCRIPTION_BYTES if description is None else description)
    (RUN / "params.npz").write_bytes(PARAMS if params is None else params)
    check_loaded(sgdlab.load(RUN))


DESCRIPTION_BYTES = json.dumps(DESCRIPTION).encode()

# ------------------------------------------------------------------------- model.json

json_scalar = st.one_of(st.none(), st.booleans(), st.integers(-10 ** 30, 10 ** 30),
                        st.sampled_from([0, 1, 2, 3, 4, 5, -1, 10 ** 9, 2 ** 31, 2 ** 63]),
                        st.floats(), st.text(max_size=6),
                        st.sampled_from(["mlp", "linear", "cnn", "softmax", "logistic",
                                         "squared", "classification", "regression", "relu",
                                         "os:system", "code:interact", "x0"]))
json_value = st.recursive(json_scalar, lambda inner: st.one_of(
    st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=5), inner, max_size=3)),
    max_leaves=12)
KEYS = list(DESCRIPTION) + ["example_shape", "zz"]
NET_KEYS = ["builtin", "hidden", "activation", "import", "channels", "kernel", "name", "zz"]


def _replace(pairs):
    d = json.loads(DESCRIPTION_BYTES)
    for key, value in pairs:
        d[key] = value
    return json.dumps(d).encode()


def _replace_net(pairs):
    d = json.loads(DESCRIPTION_BYTES)
    for key, value in pairs:
        d["model"][key] = value
    return json.dumps(d).encode()


def _delete(keys):
    d = json.loads(DESCRIPTION_BYTES)
    for key in keys:
        d.pop(key, None)
    return json.dumps(d).encode()


descriptions = st.one_of(
    st.lists(st.tuples(st.sampled_from(KEYS), json_value), min_size=1, max_size=3).map(
        _replace),
    st.lists(st.tuples(st.sampled_from(NET_KEYS), json_value), min_size=1, max_size=2).map(
        _replace_net),
    st.lists(st.sampled_from(KEYS), min_size=1, max_size=3).map(_delete),
    mutated(DESCRIPTION_BYTES),
)


@fuzz("model.json (sgdlab.load + predict)", descriptions, 400)
def test_fuzz_model_description(text):
    load_with(description=text)


# ------------------------------------------------------------------------- params.npz


def _archive(arrays: dict) -> bytes:
    import io
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


param_dtypes = st.one_of(hnp.floating_dtypes(), hnp.integer_dtypes(), hnp.boolean_dtypes(),
                         hnp.complex_number_dtypes())


def _arrays_like(draw_shape):
    """An archive holding, under each expected name, an array of a drawn dtype, either the
    expected shape or another, with any values (NaN and inf included)."""
    def one(name):
        shape = st.one_of(st.just(ARRAYS[name].shape),
                          hnp.array_shapes(min_dims=0, max_dims=3, max_side=6))
        return st.tuples(param_dtypes, shape).flatmap(
            lambda t: hnp.arrays(t[0], t[1], elements=None if t[0].kind != "f" else
                                 st.floats(width=min(64, 8 * t[0].itemsize),
                                           allow_subnormal=False)))
    return st.fixed_dictionaries({name: st.one_of(st.just(ARRAYS[name]), one(name))
                                  for name in ARRAYS}).map(_archive)


params = st.one_of(mutated(PARAMS), _arrays_like(None))


@fuzz("params.npz (sgdlab.load + predict)", params, 400)
def test_fuzz_parameter_file(data):
    load_with(params=data)
