"""Fuzzing every verb's command line: generated flags and values, in any combination, end in
success or in exit code 2 with one message; never a traceback.

Each verb's options come from its own argparse parser, so a new flag is fuzzed without
touching this file. Values are drawn by the option's type (ints and floats, negative, zero,
huge, NaN) or from a pool of hostile text (empty, paths, durations, lists, garbage). To keep
the pass fast, training itself is replaced by a stub that stops the command once every check
before training has passed ("reached training" counts as a success); the verbs' own tests run
training for real. Flags that start other processes are left out.
"""

import argparse
import contextlib
import io

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sgdlab.cli.main import build_parser, main

#: flags that launch processes or only print (covered by their own tests)
SKIPPED = {"-h", "--help", "--version", "--processes", "--coordinator", "--num-processes",
           "--process-id", "--devices"}
TEXT = ["", " ", "0", "-1", "1e309", "nan", "abc", "digits", "blobs", "linreg",
        "blobs:n=50,d=3", "missing.csv", "data.csv", "run", "new-dir", "../x", "a,b", "4,4",
        "1,0", "0.5,1,2", "5 steps", "1 epoch", "0.01s", "2 epochs", "softmax", "mlp",
        "logistic", "svm", "squared", "hinge", "adam", "momentum", "cosine", "shuffle",
        "replacement", "sequential", "relu", "tanh", "closed-form", "numerical", "\x00",
        "é", "-", "--", "1" * 40]


class ReachedTraining(Exception):
    """Raised by the stub that replaces training."""


def _stop(*args, **kwargs):
    raise ReachedTraining


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A data file and a finished run directory, for the verbs that need them."""
    import sgdlab
    root = tmp_path_factory.mktemp("cli-fuzz")
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 3))
    rows = "\n".join(f"{a:.4f},{b:.4f},{c:.4f},{int(a > 0)}" for a, b, c in X)
    (root / "data.csv").write_text("a,b,c,y\n" + rows + "\n")
    sgdlab.fit(str(root / "data.csv"), model="logistic", epochs=1, out=root / "run",
               plots=False)
    return root


def _value(action):
    if action.choices:
        return st.sampled_from(list(action.choices) + ["bogus"])
    if action.type is int:
        return st.one_of(st.integers(-3, 40), st.sampled_from([0, 10 ** 9]))
    if action.type is float:
        return st.one_of(st.floats(-5, 5, allow_nan=False), st.sampled_from(
            [0.0, 1e-12, 1e12, float("nan"), float("inf"), -float("inf")]))
    return st.sampled_from(TEXT)


def _options(parser: argparse.ArgumentParser):
    """A strategy of argv lists drawn from ``parser``'s optional arguments."""
    parts = []
    for action in parser._actions:  # argparse keeps them here; no public accessor
        if not action.option_strings or action.option_strings[0] in SKIPPED:
            continue
        flag = action.option_strings[-1] if action.option_strings[-1].startswith("--") \
            else action.option_strings[0]
        if action.nargs == 0:
            parts.append(st.just([flag]))
        else:
            parts.append(_value(action).map(lambda v, f=flag: [f, str(v)]))
    if not parts:  # a verb with positional arguments only
        return st.just([])
    return st.lists(st.one_of(parts), max_size=5).map(lambda chunks: sum(chunks, []))


def _subparser(*path):
    parser = build_parser()
    for name in path:
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = sub.choices[name]
    return parser


VERBS = {  # verb path -> positional arguments that are valid in the workspace
    ("train",): [], ("sweep",): [], ("gradcheck",): [], ("compare-methods",): [],
    ("landscape",): [], ("data", "convert"): ["data.csv", "{new}"],
    ("predict",): ["run", "--data", "data.csv"], ("export",): ["run", "{new}"],
}
COUNTS: dict = {}


@pytest.mark.parametrize("verb", list(VERBS), ids=lambda v: " ".join(v))
def test_every_outcome_is_success_or_one_message(verb, workspace, monkeypatch):
    import sgdlab.engine
    import sgdlab.engine.fit
    import sgdlab.engine.stream_fit
    import sgdlab.lab.compare
    import sgdlab.lab.random_search
    import sgdlab.lab.restarts
    import sgdlab.lab.runbook
    import sgdlab.lab.slices
    import sgdlab.lab.sweep_noise
    import sgdlab.lab.throughput
    # every module that binds a stubbed name at its import is imported above, before the
    # stub: one imported under it would keep the stub after this test
    for module, name in ((sgdlab.engine.fit, "train"), (sgdlab.engine.stream_fit, "train_fed"),
                         (sgdlab.lab.random_search, "random_search"),
                         (sgdlab.lab.compare, "train"), (sgdlab.lab.compare, "random_search"),
                         (sgdlab.lab.restarts, "train"), (sgdlab.lab.runbook, "train"),
                         (sgdlab.lab.slices, "train"), (sgdlab.lab.sweep_noise, "train"),
                         (sgdlab.lab.throughput, "probe_throughput"),
                         (sgdlab.engine, "train")):  # gradcheck's burn-in
        monkeypatch.setattr(module, name, _stop)
    monkeypatch.chdir(workspace)
    counts = COUNTS.setdefault(verb, {"examples": 0, "reached training": 0, "ok": 0,
                                      "exit 1": 0, "message": 0, "usage": 0})
    fresh = iter(range(10 ** 6))

    @settings(max_examples=40, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(_options(_subparser(*verb)))
    def run(options):
        positional = [p.replace("{new}", f"new-{verb[-1]}-{next(fresh)}")
                      for p in VERBS[verb]]
        argv = [*verb, *positional, *options]
        if verb == ("train",) or verb == ("sweep",) or verb == ("landscape",):
            argv += ["--quiet"]
        err = io.StringIO()
        counts["examples"] += 1
        try:
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                code = main(argv)
        except ReachedTraining:
            counts["reached training"] += 1
            return
        except SystemExit as stop:  # argparse: a usage error, exit 2 with its message
            assert stop.code == 2, (argv, stop.code)
            assert "error:" in err.getvalue(), argv
            counts["usage"] += 1
            return
        text = err.getvalue()
        assert "Traceback" not in text, (argv, text)
        assert code in (0, 1, 2), (argv, code)
        if code == 2:
            errors = [line for line in text.splitlines() if ": error: " in line]
            assert len(errors) == 1, (argv, text)
            counts["message"] += 1
        else:
            counts["ok" if code == 0 else "exit 1"] += 1

    run()
    print(f"\n{' '.join(verb)}: {counts}")
    fuzzed = [a for a in _subparser(*verb)._actions
              if a.option_strings and a.option_strings[0] not in SKIPPED]
    # options that take values give 40 distinct examples; on/off flags alone fewer (export:
    # --trust-code), and no option one
    if any(a.nargs != 0 for a in fuzzed):
        assert counts["examples"] == 40
    else:
        assert 1 <= counts["examples"] <= max(1, 2 ** len(fuzzed) * 4)
