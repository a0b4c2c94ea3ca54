"""Fault injection on every write of a run directory, and symbolic links planted at its names.

A clean run of a small real training (``sgdlab train``, in process) is recorded first: every
write primitive it calls on a file of its run directory (``mkdir``, ``open`` for writing,
``write``, ``fsync``, ``ftruncate``, ``replace``) and every figure it renders, each labelled by
the file it serves (``config.json``, ``history.csv``, a checkpoint's arrays, the temporary
file of one, ...). Each distinct (primitive, file) pair is then a write path, and the same
run is repeated with a filesystem error injected at its first and at its last occurrence
(``ENOSPC``, ``EIO``, ``EACCES`` and ``EDQUOT`` in turn; a write is made short, the way a full
disk ends one). Every such run must end with exit code 2 and one message naming the run
directory with the fix for that error, no traceback, no lock or temporary file left, and
every file present complete: JSON that parses, ``history.csv`` of whole lines, ``.npz`` that
loads, PNGs that end, checkpoints that verify.

Then a symbolic link to a file outside the run directory is planted at each fixed name the
run writes (before the run writes its files, right after it claimed the directory, and during
it for the history and a checkpoint): the run is refused with a message naming the link and
saying to remove it, and the link's target is untouched.
"""

from __future__ import annotations

import csv
import errno
import io
import json
import os
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

import sgdlab
from sgdlab.cli.main import main
from sgdlab.engine.checkpoint import CheckpointStore
from sgdlab.engine.historylog import HistoryLog
from sgdlab.errors import RunDirError

JOB = ["train", "--data", "gaussian:n=120,d=4,n_classes=3", "--model", "linear",
       "--epochs", "2", "--batch-size", "32", "--chunk-steps", "2", "--eval-every", "3 steps",
       "--checkpoint-every", "3 steps", "--seed", "1", "--quiet"]
OPS = ("mkdir", "open", "write", "fsync", "ftruncate", "replace", "savefig")
ERRNOS = (errno.ENOSPC, errno.EIO, errno.EACCES, errno.EDQUOT)
HINTS = {errno.ENOSPC: "free space on the device holding", errno.EDQUOT: "free space",
         errno.EIO: "I/O error", errno.EACCES: "writable"}
#: What a clean run must be seen writing, or the harness is not covering the run directory.
EXPECTED = {"open .lock", "write .lock", "write history.csv", "replace config.json",
            "replace metrics.json", "replace params.npz", "replace model.json",
            "replace curves_epoch.png", "replace curves_time.png",
            "replace checkpoints/ckpt-*.npz", "replace checkpoints/ckpt-*.json",
            "fsync checkpoints/", "mkdir checkpoints/", "savefig plot",
            "write checkpoints/ckpt-*.npz [tmp]", "open checkpoints/ckpt-*.json [tmp]"}
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT
_TMP = re.compile(r"^\.(.+)\.[A-Za-z0-9_]+\.tmp$")
_CKPT = re.compile(r"^ckpt-\d{9}\.(npz|json)$")
_COUNTS = pytest.reliability_counts


def _category(root: Path, path) -> str | None:
    """``config.json``, ``checkpoints/ckpt-*.npz [tmp]``, ``history.csv``, ``.`` ... or None
    for a path outside ``root``."""
    path = os.fspath(path)
    path = path.removesuffix(" (deleted)")
    path = os.path.join(os.path.realpath(os.path.dirname(path) or "."), os.path.basename(path))
    try:
        rel = Path(path).relative_to(root)
    except ValueError:
        return None
    parts = list(rel.parts) or ["."]
    name, tmp = parts[-1], ""
    if (m := _TMP.match(name)) and name != ".lock":
        name, tmp = m.group(1), " [tmp]"
    if _CKPT.match(name):
        name = "ckpt-*." + name.rsplit(".", 1)[1]
    if parts[0] == "checkpoints" and len(parts) == 1:
        name = "checkpoints/"
    parts[-1] = name
    return "/".join(parts) + tmp


class Faults:
    """Wraps the write primitives: records ``(op, file)`` events of one run, or fails one.

    ``target=(op, file, k, errno)`` fails the k-th (0-based) occurrence of that event: a
    ``write`` is made short (half of it written, as a full disk ends one) and every later
    write to that descriptor raises; every other primitive raises ``OSError(errno)``.
    """

    def __init__(self, root: Path, monkeypatch, target=None):
        self.root, self.target = Path(os.path.realpath(root)), target
        self.events: list[str] = []
        self.fired = False
        self.dead_fds: set[int] = set()
        self._wrap(monkeypatch)

    def _hit(self, op: str, path) -> bool:
        cat = _category(self.root, path) if path is not None else "plot"
        if cat is None:
            return False
        event = f"{op} {cat}"
        k = sum(e == event for e in self.events)
        self.events.append(event)
        if self.target is None or self.fired:
            return False
        t_op, t_cat, t_k, _ = self.target
        if (op, cat, k) == (t_op, t_cat, t_k):
            self.fired = True
            return True
        return False

    def _error(self, path=None):
        code = self.target[3]
        return OSError(code, os.strerror(code), *([os.fspath(path)] if path else []))

    @staticmethod
    def _fd_path(fd: int) -> str:
        try:
            return os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            return ""

    def _wrap(self, mp):
        real = {name: getattr(os, name) for name in
                ("mkdir", "open", "write", "fsync", "ftruncate", "replace", "link")}

        def mkdir(path, mode=0o777, *a, **k):
            # mkdir(exist_ok=True) of a directory that exists writes nothing: not a write path
            if not os.path.isdir(path) and self._hit("mkdir", path):
                raise self._error(path)
            return real["mkdir"](path, mode, *a, **k)

        def open_(path, flags, mode=0o777, *a, **k):
            if flags & _WRITE_FLAGS and self._hit("open", path):
                raise self._error(path)
            return real["open"](path, flags, mode, *a, **k)

        def write(fd, data):
            if fd in self.dead_fds:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            if self._hit("write", self._fd_path(fd)):
                if len(data) < 2:
                    raise self._error()
                self.dead_fds.add(fd)
                return real["write"](fd, bytes(data)[:len(data) // 2])
            return real["write"](fd, data)

        def fsync(fd):
            if self._hit("fsync", self._fd_path(fd)):
                raise self._error()
            return real["fsync"](fd)

        def ftruncate(fd, length):
            if self._hit("ftruncate", self._fd_path(fd)):
                raise self._error()
            return real["ftruncate"](fd, length)

        def replace(src, dst, *a, **k):
            if self._hit("replace", dst):
                raise self._error(dst)
            return real["replace"](src, dst, *a, **k)

        def link(src, dst, *a, **k):  # the move into place that never replaces a file
            if self._hit("replace", dst):
                raise self._error(dst)
            return real["link"](src, dst, *a, **k)

        for name, fn in (("mkdir", mkdir), ("open", open_), ("write", write),
                         ("fsync", fsync), ("ftruncate", ftruncate), ("replace", replace),
                         ("link", link)):
            mp.setattr(os, name, fn)

        from matplotlib.figure import Figure
        real_savefig = Figure.savefig

        def savefig(fig, *a, **k):
            if self._hit("savefig", None):
                raise self._error()
            return real_savefig(fig, *a, **k)

        mp.setattr(Figure, "savefig", savefig)


def check_complete(run: Path) -> list[str]:
    """What is wrong with the files left in ``run`` (empty: every file present is complete)."""
    bad = []
    if (run / ".lock").exists():
        bad.append("the lock file was left behind")
    for p in sorted(run.rglob("*")) if run.is_dir() else []:
        rel = p.relative_to(run)
        if p.is_symlink() or p.is_dir():
            continue
        if p.name.endswith(".tmp"):
            bad.append(f"temporary file left: {rel}")
            continue
        data = p.read_bytes()
        try:
            if p.suffix == ".json":
                json.loads(data)
            elif p.suffix == ".npz":
                with np.load(io.BytesIO(data), allow_pickle=False) as z:
                    [z[k] for k in z.files]
            elif p.suffix == ".png":
                assert data.startswith(b"\x89PNG\r\n\x1a\n") and data.endswith(b"IEND\xaeB`\x82")
            elif p.suffix == ".csv":
                text = data.decode("utf-8")
                assert text == "" or text.endswith("\n"), "last line torn"
                rows = list(csv.reader(io.StringIO(text)))
                assert all(len(r) == len(rows[0]) for r in rows), "ragged rows"
        except Exception as e:  # noqa: BLE001 - collected into the report
            bad.append(f"{rel} is incomplete: {e!r}")
    store = CheckpointStore(run)
    for step in store.steps():
        try:
            store.read(step)
        except RunDirError as e:
            bad.append(f"checkpoint {step} does not verify: {e}")
    return bad


def run_cli(run: Path, capsys) -> tuple[int | str, str]:
    """Exit code and stderr of ``sgdlab train JOB --out run``; an exception that escapes the
    command line (a traceback for the user) comes back as the code ``'raised ...'``."""
    capsys.readouterr()
    try:
        rc = main([*JOB, "--out", str(run)])
    except Exception as e:  # noqa: BLE001 - reported as the failure it is
        rc = f"raised {type(e).__name__}: {e}"
    return rc, capsys.readouterr().err


@pytest.fixture(scope="module")
def plan(tmp_path_factory):
    """The events of a clean run: ``{(op, file): occurrences}`` in first-seen order."""
    mp = pytest.MonkeyPatch()
    run = tmp_path_factory.mktemp("clean") / "run"
    try:
        faults = Faults(run, mp)
        assert main([*JOB, "--out", str(run)]) == 0
    finally:
        mp.undo()
    assert check_complete(run) == []
    counts = Counter(faults.events)
    missing = EXPECTED - set(counts)
    assert not missing, f"the clean run was not seen writing: {sorted(missing)}"
    return {tuple(e.split(" ", 1)): n for e, n in counts.items()}


def _cases(plan, op):
    """(file, occurrence) to fail for ``op``: the first and the last of each file."""
    out = []
    for (o, cat), n in plan.items():
        if o == op:
            out += [(cat, 0)] + ([(cat, n - 1)] if n > 1 else [])
    return out


@pytest.mark.parametrize("op", OPS)
def test_a_fault_at_every_write_is_one_message_and_leaves_whole_files(op, plan, tmp_path,
                                                                      monkeypatch, capsys):
    cases = _cases(plan, op)
    assert cases or op not in {e.split()[0] for e in EXPECTED}
    failures = []
    for i, (cat, k) in enumerate(cases):
        code = ERRNOS[(OPS.index(op) + i) % len(ERRNOS)]
        run = tmp_path / f"case{i}" / "run"
        with monkeypatch.context() as mp:
            faults = Faults(run, mp, (op, cat, k, code))
            rc, err = run_cli(run, capsys)
        lines = [ln for ln in err.splitlines() if ln.strip()]
        what = f"{op} {cat} #{k} ({errno.errorcode[code]})"
        problems = []
        if not faults.fired:
            problems.append("the fault was never reached")
        if rc != 2:
            problems.append(f"exit {rc}")
        if "Traceback" in err or len(lines) != 1:
            problems.append(f"stderr is not one message: {err!r}")
        elif not lines[0].startswith("sgdlab train: error: ") or str(run) not in lines[0]:
            problems.append(f"the message does not name the run directory: {lines[0]!r}")
        elif op == "write":
            if HINTS[errno.ENOSPC] not in lines[0] and "symbolic" not in lines[0]:
                problems.append(f"no fix for a full disk in {lines[0]!r}")
        elif HINTS[code] not in lines[0]:
            problems.append(f"no fix for {errno.errorcode[code]} in {lines[0]!r}")
        problems += check_complete(run)
        if problems:
            failures.append(f"{what}: " + "; ".join(problems))
    _COUNTS[f"fault injection, {op}: write paths x faults"] = \
        f"{len({c for c, _ in cases})} x {len(cases)}"
    _COUNTS["fault injection, total faulted runs"] = \
        _COUNTS.get("fault injection, total faulted runs", 0) + len(cases)
    assert not failures, "\n".join(failures)


def test_a_torn_history_append_is_cut_back_and_the_run_resumes(plan, tmp_path, monkeypatch,
                                                               capsys):
    """The disk fills during the last history row: the file keeps whole lines only, the
    checkpoints are intact, and --resume finishes the run once there is space again."""
    n = plan[("write", "history.csv")]
    run = tmp_path / "run"
    with monkeypatch.context() as mp:
        Faults(run, mp, ("write", "history.csv", n - 1, errno.ENOSPC))
        rc, err = run_cli(run, capsys)
    assert rc == 2 and "history.csv" in err and "No space left on device" in err
    text = (run / "history.csv").read_text()
    assert text.endswith("\n") and text.count("\n") == n  # header + the rows before
    assert check_complete(run) == []
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--quiet"]) == 0
    assert (run / "metrics.json").exists() and check_complete(run) == []


@pytest.mark.parametrize("code", ERRNOS, ids=lambda c: errno.errorcode[c])
def test_python_api_raises_one_run_dir_error(code, plan, tmp_path, monkeypatch):
    run = tmp_path / "run"
    X, y = np.random.default_rng(0).normal(size=(60, 3)), np.arange(60) % 2
    with monkeypatch.context() as mp:
        faults = Faults(run, mp, ("replace", "metrics.json", 0, code))
        with pytest.raises(RunDirError) as info:
            sgdlab.fit(X, y, epochs=1, batch_size=16, out=run)
    assert faults.fired
    message = str(info.value)
    assert str(run / "metrics.json") in message and HINTS[code] in message
    assert check_complete(run) == []


# ------------------------------------------------------------------------- planted symlinks

PLANTED = (".lock", "history.csv", "config.json", "metrics.json", "params.npz", "model.json",
           "curves_epoch.png", "curves_time.png", "checkpoints",
           "checkpoints/ckpt-000000000.npz", "checkpoints/ckpt-000000000.json",
           "checkpoints/ckpt-000000003.npz", "checkpoints/ckpt-000000003.json")
VICTIM = b"somebody else's file\n"


def _victim(tmp_path: Path, directory: bool) -> Path:
    if directory:
        v = tmp_path / "victim_dir"
        v.mkdir()
        for name in ("ckpt-000000009.json", "ckpt-000000009.npz", ".x.tmp", "notes.txt"):
            (v / name).write_bytes(VICTIM)
        return v
    v = tmp_path / "victim.txt"
    v.write_bytes(VICTIM)
    return v


def _untouched(victim: Path) -> bool:
    if victim.is_dir():
        return sorted(p.name for p in victim.iterdir()) == sorted(
            ["ckpt-000000009.json", "ckpt-000000009.npz", ".x.tmp", "notes.txt"]) and \
            all(p.read_bytes() == VICTIM for p in victim.iterdir())
    return victim.read_bytes() == VICTIM


def _assert_refused(rc, err, link: Path):
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert str(link) in lines[0] and "symbolic link" in lines[0] and "remove" in lines[0]


def plant_when_claimed(monkeypatch, plant):
    """Call ``plant()`` right after the run claims its directory (its marker written, before
    any file of the run): a directory that held anything before it was claimed is not
    sgdlab's and is refused outright (tests/engine/test_claim.py), so this is where a link
    planted "before the run" can still be met."""
    import sgdlab.engine.claim as claim
    real = claim.write_marker

    def write_marker(path, verb, real=real):
        real(path, verb)
        plant()
    monkeypatch.setattr(claim, "write_marker", write_marker)


@pytest.mark.parametrize("name", PLANTED)
def test_a_symlink_planted_before_the_run_is_refused(name, tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    link = run / name
    victim = _victim(tmp_path, directory=name == "checkpoints")

    def plant():
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(victim)
    if name == ".lock":  # the lock is taken before the marker: a link there refuses it
        plant()
    else:
        plant_when_claimed(monkeypatch, plant)
    rc, err = run_cli(run, capsys)
    _assert_refused(rc, err, link)
    assert link.is_symlink() and _untouched(victim)
    _COUNTS["symlinks planted (before the run)"] = len(PLANTED)


def test_a_hard_link_at_the_lock_is_refused(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    victim = _victim(tmp_path, directory=False)
    os.link(victim, run / ".lock")
    rc, err = run_cli(run, capsys)
    assert rc == 2 and "2 hard links" in err and str(run / ".lock") in err
    assert _untouched(victim)


def test_a_symlink_planted_during_the_run_is_refused(tmp_path, monkeypatch, capsys):
    """Links planted after the history was reset and after the first checkpoint."""
    for name in ("history.csv", "checkpoints/ckpt-000000003.npz"):
        run = tmp_path / name.replace("/", "_") / "run"
        run.parent.mkdir()
        victim = _victim(run.parent, directory=False)
        link = run / name
        with monkeypatch.context() as mp:
            if name == "history.csv":
                real = HistoryLog.reset

                def reset(self, rows, real=real, link=link, victim=victim):
                    real(self, rows)
                    link.unlink()
                    link.symlink_to(victim)

                mp.setattr(HistoryLog, "reset", reset)
            else:
                real = CheckpointStore.save

                def save(self, snap, real=real, link=link, victim=victim):
                    if snap.step == 3:
                        link.symlink_to(victim)
                    return real(self, snap)

                mp.setattr(CheckpointStore, "save", save)
            rc, err = run_cli(run, capsys)
        _assert_refused(rc, err, link)
        assert link.is_symlink() and _untouched(victim) and check_complete(run) == []
    _COUNTS["symlinks planted (during the run)"] = 2


def test_links_at_old_fixed_temporary_names_are_never_opened(tmp_path, capsys, monkeypatch):
    """Temporary files have unpredictable names created exclusively: a link planted where a
    fixed temporary name used to be is not written through, and the run succeeds."""
    run = tmp_path / "run"
    victim = _victim(tmp_path, directory=False)
    names = (".config.json.tmp", ".metrics.json.tmp", "checkpoints/.ckpt-000000000.npz.tmp",
             "checkpoints/.ckpt-000000000.json.tmp")

    def plant():
        (run / "checkpoints").mkdir()
        for name in names:
            (run / name).symlink_to(victim)
    plant_when_claimed(monkeypatch, plant)
    rc, err = run_cli(run, capsys)
    assert rc == 0, err
    assert _untouched(victim)
    _COUNTS["links at old fixed temporary names"] = len(names)


def test_python_api_refuses_a_planted_symlink(tmp_path, monkeypatch):
    run = tmp_path / "run"
    victim = _victim(tmp_path, directory=False)
    plant_when_claimed(monkeypatch, lambda: (run / "config.json").symlink_to(victim))
    X, y = np.random.default_rng(0).normal(size=(40, 3)), np.arange(40) % 2
    with pytest.raises(RunDirError, match="symbolic link.*remove"):
        sgdlab.fit(X, y, epochs=1, out=run)
    assert _untouched(victim) and (run / "config.json").is_symlink()


# ------------------------------------------------------------- other verbs' written files


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A run directory and a CSV of features for ``sgdlab predict``."""
    base = tmp_path_factory.mktemp("trained")
    assert main([*JOB, "--out", str(base / "run")]) == 0
    X = np.random.default_rng(0).normal(size=(10, 4))
    np.savetxt(base / "x.csv", X, delimiter=",", header="x0,x1,x2,x3", comments="")
    return base


def _verb(trained, verb, out: Path) -> list[str]:
    if verb == "predict":
        return ["predict", str(trained / "run"), "--data", str(trained / "x.csv"),
                "--out", str(out / "pred.csv")]
    return ["gradcheck", "--data", "gaussian:n=40,d=4,n_classes=3", "--model", "linear",
            "--examples", "8", "--out", str(out)]


@pytest.mark.parametrize("verb, name", [("predict", "pred.csv"), ("gradcheck", "gradcheck.json")])
@pytest.mark.parametrize("fault", ["write", "replace", "symlink"])
def test_other_verbs_outputs(verb, name, fault, trained, tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    out.mkdir()
    victim = _victim(tmp_path, directory=False)
    if fault == "symlink":
        (out / name).symlink_to(victim)
    capsys.readouterr()
    with monkeypatch.context() as mp:
        faults = Faults(out, mp, (fault, name + (" [tmp]" if fault == "write" else ""), 0,
                                  errno.ENOSPC))
        rc = main(_verb(trained, verb, out))
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert str(out / name) in lines[0]
    if fault == "symlink":
        assert "symbolic link" in lines[0] and (out / name).is_symlink()
    else:
        assert faults.fired and HINTS[errno.ENOSPC] in lines[0]
        assert not (out / name).exists()
    assert _untouched(victim) and check_complete(out) == []
    _COUNTS["other verbs' outputs x faults (predict, gradcheck)"] = "2 x 3"
