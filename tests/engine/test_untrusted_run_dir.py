"""A run directory is data, not code: loading, predicting, exporting, resuming or fine-tuning
from one imports nothing it names unless the user opts in for that call (``trust_code=True``,
``--trust-code``) or passes the network; the refusal names the module. With the opt-in the
working directory is searched after the installed packages, never first."""

import json
import shutil
import sys
import textwrap
import uuid

import pytest

import sgdlab
from sgdlab.cli.main import main
from sgdlab.errors import ConfigError

DATA = "gaussian:n=120,d=4,n_classes=3"

#: a network as a module-level factory of an (init, apply) pair
NETWORK = textwrap.dedent("""
    import jax, jax.numpy as jnp

    def init(key, n_in, n_out):
        return {"W": jax.random.normal(key, (n_in, n_out)) * 0.01, "b": jnp.zeros(n_out)}

    def apply(params, X):
        return X @ params["W"] + params["b"]

    def make():
        return init, apply
""")


def _planted(where, name: str, flag) -> str:
    """A module ``name`` that, when imported, writes ``flag`` (the code ran) and fails."""
    (where / f"{name}.py").write_text(
        f"open({str(flag)!r}, 'w').write('ran')\nraise SystemExit(0)\n")
    return name


@pytest.fixture(scope="module")
def user_run(tmp_path_factory):
    """A finished run of a user network named by import path, and the module's folder."""
    root = tmp_path_factory.mktemp("user-net")
    name = f"usernet_{uuid.uuid4().hex[:8]}"
    (root / f"{name}.py").write_text(NETWORK)
    sys.path.insert(0, str(root))
    try:
        sgdlab.fit(DATA, model=f"{name}:make", loss="softmax", epochs=1, lr=0.1,
                   out=root / "run", plots=False, checkpoint_every="end")
    finally:
        sys.path.remove(str(root))
    return root / "run", name


@pytest.fixture
def hostile(tmp_path, user_run):
    """A copy of the run whose model.json names ``spec`` as its network; the flag file that
    appears if any code named in it ran; and the folder the planted module lies in (the
    working directory)."""
    def make(spec):
        run = tmp_path / f"run-{uuid.uuid4().hex[:6]}"
        shutil.copytree(user_run[0], run)
        meta = json.loads((run / "model.json").read_text())
        meta["model"] = spec
        (run / "model.json").write_text(json.dumps(meta))
        return run
    return make


def _evil(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))  # as `python -m sgdlab` puts it first
    flag = tmp_path / "RAN"
    return _planted(tmp_path, f"evil_{uuid.uuid4().hex[:8]}", flag), flag


@pytest.mark.parametrize("form", ["path", "pair"])
def test_loading_imports_nothing_the_run_directory_names(form, hostile, tmp_path, monkeypatch,
                                                         capsys):
    module, flag = _evil(tmp_path, monkeypatch)
    spec = {"import": f"{module}:make"} if form == "path" else \
        {"name": "x", "import": {"init": f"{module}:init", "apply": f"{module}:apply"}}
    run = hostile(spec)
    with pytest.raises(ConfigError, match=rf"names code to run: .* importing the module "
                                          rf"'{module}' .*pass --trust-code .*trust_code=True"):
        sgdlab.load(run)
    data = tmp_path / "x.npy"
    import numpy as np
    np.save(data, np.zeros((3, 4), np.float32))
    for argv in (["predict", str(run), "--data", str(data)],
                 ["export", str(run), str(tmp_path / "exported")],
                 ["train", "--data", DATA, "--init", str(run), "--out", str(tmp_path / "ft"),
                  "--quiet"]):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert f"importing the module '{module}'" in err and "--trust-code" in err, err
        assert "Traceback" not in err
    assert not flag.exists() and module not in sys.modules
    assert not (tmp_path / "exported").exists() and not (tmp_path / "ft").exists()


def test_a_builtin_name_that_is_an_import_path_is_refused(hostile, tmp_path, monkeypatch):
    module, flag = _evil(tmp_path, monkeypatch)
    run = hostile({"builtin": f"{module}:make"})
    for trust in (False, True):
        with pytest.raises(sgdlab.SgdlabError, match="is not a built-in one"):
            sgdlab.load(run, trust_code=trust)
    assert not flag.exists()


def test_code_is_imported_with_the_opt_in_and_never_from_the_working_directory_first(
        user_run, tmp_path, monkeypatch):
    """The run names a module that is installed (here: on sys.path after the working
    directory); a file of that name planted in the working directory is not what runs."""
    run, name = user_run
    installed = tmp_path / "site"
    installed.mkdir()
    (installed / f"{name}.py").write_text(NETWORK)
    work = tmp_path / "work"
    work.mkdir()
    flag = work / "RAN"
    _planted(work, name, flag)  # same name, in the working directory
    monkeypatch.chdir(work)
    monkeypatch.syspath_prepend(str(installed))
    monkeypatch.syspath_prepend(str(work))      # first, as `python -m sgdlab` has it
    monkeypatch.delitem(sys.modules, name, raising=False)
    path_before = list(sys.path)
    model = sgdlab.load(run, trust_code=True)
    assert not flag.exists()
    assert sys.modules[name].__file__ == str(installed / f"{name}.py")
    assert sys.path == path_before  # restored afterwards
    import numpy as np
    assert model.predict(np.zeros((2, 4), np.float32)).shape == (2,)


def test_passing_the_network_needs_no_trust(user_run, tmp_path, monkeypatch):
    run, name = user_run
    monkeypatch.delitem(sys.modules, name, raising=False)
    import importlib.util
    spec = importlib.util.spec_from_loader(name, loader=None)
    module = importlib.util.module_from_spec(spec)
    exec(NETWORK, module.__dict__)
    model = sgdlab.load(run, model=module.make())
    import numpy as np
    assert model.predict(np.zeros((2, 4), np.float32)).shape == (2,)
    assert name not in sys.modules


def test_resuming_a_run_that_names_code_needs_the_opt_in(user_run, tmp_path, monkeypatch,
                                                        capsys):
    run, name = user_run
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    monkeypatch.delitem(sys.modules, name, raising=False)
    with pytest.raises(ConfigError, match=rf"checkpoint of .* importing the module '{name}'.*"
                                          r"fit\(resume=RUN_DIR, trust_code=True\)"):
        sgdlab.fit(resume=copy, epochs=2, plots=False)
    assert name not in sys.modules
    code = main(["train", "--resume", str(copy), "--epochs", "2", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and f"importing the module '{name}'" in err and "--trust-code" in err
    assert name not in sys.modules
    monkeypatch.syspath_prepend(str(run.parent))
    assert main(["train", "--resume", str(copy), "--epochs", "2", "--quiet",
                 "--trust-code"]) == 0
    assert json.loads((copy / "metrics.json").read_text())["epochs"] == 2
