"""A run directory's life, in one object: lock, resume check, checkpoint session, final files.

:func:`sgdlab.fit` (and through it ``sgdlab train``) uses a :class:`RunDirectory` as a
context manager around everything it does with ``out`` / ``resume``::

    with RunDirectory(out, resume=resume, force=force, placement=placement) as run_dir:
        snap = run_dir.resume_snapshot()          # None for a fresh run
        config = run_dir.config(settings, config)  # the checkpoint's, with the given on top
        ...prepare data...
        if run_dir.needs_session:
            run_dir.open_session(config, fingerprint, data=record, data_name=name)
        result = run_dir.run(job, config)         # divergence recovery, session's record
        run_dir.finish(result, data_name=name)    # config.json, metrics, model, plots

Entering claims the directory (:mod:`sgdlab.engine.claim`: a marker written first, the lock,
a foreign or taken directory refused); leaving closes the session and releases the lock, also
when training raised, so the next run can take the directory. A fresh run into an existing
train run needs ``overwrite``: it is then built beside the old run and swapped in by
:meth:`finish` (an interrupted run too: it is complete, and resumable), while a failure
before that leaves the old run as it was.

Several processes (``placement``): every process builds a RunDirectory from the same
arguments and so takes the same decisions (whether a session is kept, which checkpoint it
continues from, what was changed); only the process with ``placement.is_writer`` locks and
writes the directory, the others keep a session without files.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from pathlib import Path

from .engine.checkpoint import CheckpointStore, Snapshot
from .engine.claim import MARKER, OutputClaim, claim_output
from .engine.config import TrainConfig
from .engine.job import Job, train_job
from .engine.predictor import untrusted_code_message
from .engine.result import FitResult
from .engine.resume import check_resume, resume_config, train_with_recovery
from .engine.rundir import write_json_atomic
from .engine.session import CheckpointPolicy, Session
from .errors import ConfigError, RunDirError

SINGLE_PROCESS_CHECKPOINTS = (
    "checkpoints and resume work on one process or over several processes (--processes, "
    "--coordinator), not over several devices of one process (--devices); drop --devices to "
    "use them")

HALVE_LR_ONE_PROCESS = (
    "on_divergence='halve-lr' (--on-divergence halve-lr) needs a single process; runs over "
    "several processes or devices stop on divergence and can be resumed from a checkpoint "
    "with a lower --lr and --force")


class RunDirectory:
    """The run directory of one fit: where it writes, what it resumes, how it checkpoints.

    Args:
      out: the directory to write (``None``: no files; a divergence-recovery session may still
        be kept in memory).
      resume: a run directory to continue from its newest valid checkpoint (it is then also
        the directory written; ``out``, if given, must name the same one).
      force: continue a resume despite changed settings, data or process layout (recorded as
        ``forced_changes``).
      placement: the :class:`~sgdlab.engine.batched.MeshPlacement` of a run over several
        devices or processes; only ``placement.is_writer`` touches the directory.
      checkpoint_every, keep_checkpoints, on_divergence, max_retries: the given parts of the
        :class:`~sgdlab.engine.session.CheckpointPolicy`; a resume takes the rest from the
        checkpoint.
      overwrite: replace an existing train run at ``out`` (built beside it, swapped in when
        finished); without it such an ``out`` is refused. Not with ``resume``.
      trust_code: on a resume, allow importing the network the checkpoint names by import
        path (``"module:factory"``); without it, and without a model given anew, such a
        resume is refused (:meth:`config`): a checkpoint is data, not code.

    Raises :class:`ConfigError` for options that do not go together and :class:`RunDirError`
    for a ``resume`` directory that does not exist, before anything is written.
    """

    def __init__(self, out: str | os.PathLike | None = None, *,
                 resume: str | os.PathLike | None = None, force: bool = False, placement=None,
                 checkpoint_every: str | None = None, keep_checkpoints: int | None = None,
                 on_divergence: str | None = None, max_retries: int | None = None,
                 trust_code: bool = False, overwrite: bool = False):
        if placement is not None and on_divergence == "halve-lr":
            raise ConfigError(HALVE_LR_ONE_PROCESS)
        if placement is not None and getattr(placement, "world", 1) == 1 and \
                getattr(placement, "n_devices", 1) > 1 and any(
                    v is not None for v in (resume, checkpoint_every, keep_checkpoints,
                                            max_retries)):
            # Resuming over several devices of one process is not exercised by any test yet,
            # so it is refused as on the command line (--devices); its run directory still
            # works.
            raise ConfigError(SINGLE_PROCESS_CHECKPOINTS)
        if overwrite and resume is not None:
            raise ConfigError("overwrite (--overwrite) starts a new run in place of an old one; "
                              "resume (--resume) continues one: give only one of them")
        self.placement = placement
        self.trust_code = trust_code
        self.overwrite = overwrite
        self.resume = resume
        self.force = force
        #: the directory every process names: whether a session is kept follows from it, so
        #: that all processes take the same checkpoint decisions
        self.shared = resume if resume is not None else out
        self.writer = placement is None or placement.is_writer
        #: the directory this process writes (``None`` on the processes that do not write)
        self.path = out if self.writer else None
        self._given_policy = {k: v for k, v in (
            ("every", checkpoint_every), ("keep", keep_checkpoints),
            ("on_divergence", on_divergence), ("max_retries", max_retries)) if v is not None}
        self.policy = CheckpointPolicy(**self._given_policy)
        if resume is not None:
            if self.path is not None and \
                    os.path.realpath(self.path) != os.path.realpath(resume):
                raise ConfigError(f"resume={str(resume)!r} continues that run directory; out="
                                  f"{str(out)!r} names another one: give only one of them")
            self.path = resume if self.writer else None
            if not os.path.isdir(resume):
                raise RunDirError(f"cannot resume {str(resume)!r}: no such run directory")
        self.session: Session | None = None
        self._created = False  # whether entering made the directory (so a failure removes it)
        self._claim: OutputClaim | None = None
        self._snap: Snapshot | None = None

    # -- the directory's life -------------------------------------------------------------
    def __enter__(self) -> "RunDirectory":
        """Claim the directory (the writing process only): ``path`` is then where this run
        writes (beside ``out`` while an overwrite is built)."""
        if self.path is not None:
            self._claim = claim_output(
                self.path, "train", overwrite=self.overwrite, resume=self.resuming,
                adopt=lambda p: bool(CheckpointStore(p).steps())).acquire()
            self._created = self._claim.created
            self.path = self._claim.path
        return self

    def __exit__(self, exc_type, *exc) -> None:
        fresh = self._claim is not None and self._claim.fresh
        self.close()
        if exc_type is not None and fresh:
            self._remove_unused()

    def _remove_unused(self) -> None:
        """After a failure before the first step (bad data, an option the model refuses, a
        program too large for the memory), a directory this run started afresh holds at most
        the marker, the ``config.json`` and the empty ``history.csv`` it wrote: remove them,
        and the directory if this run made it, so failed commands leave no run directories
        that are not runs. Anything else in it (a history row, a checkpoint) keeps it all."""
        path = Path(self.path)
        try:
            names = {p.name for p in path.iterdir()}
            history = path / "history.csv"
            own = all((path / n).is_file() and not (path / n).is_symlink() for n in names)
            if own and names <= {"config.json", "history.csv", MARKER} and \
                    (not history.exists() or history.stat().st_size == 0):
                for name in names:
                    (path / name).unlink()
                if self._created:
                    path.rmdir()
        except OSError:
            pass  # kept: nothing is lost by leaving it

    def close(self) -> None:
        """Close the session (signal handlers, the history file), discard an overwrite that
        did not finish (the old run stays) and release the lock."""
        try:
            if self.session is not None:
                self.session.close()
        finally:
            if self._claim is not None:
                self._claim.discard()
                self._claim.release()
                self._claim = None

    @property
    def locked(self) -> bool:
        """Whether this object holds the directory's lock now."""
        return self._claim is not None and self._claim.held

    # -- what a resume continues --------------------------------------------------------------
    @property
    def resuming(self) -> bool:
        return self.resume is not None

    def resume_snapshot(self) -> Snapshot | None:
        """The newest valid checkpoint of ``resume`` (``None`` for a fresh run).

        Every process reads it itself (the directory must be shared); read once, it also
        completes the checkpoint policy with the recorded settings not given.
        """
        if self.resume is None:
            return None
        if self._snap is None:
            self._snap = CheckpointStore(self.resume).latest()
            self.policy = CheckpointPolicy(**{**self._snap.meta.get("policy", {}),
                                              **self._given_policy})
        return self._snap

    def config(self, settings: dict, config: TrainConfig | None = None) -> TrainConfig:
        """The run's configuration: ``config`` (or the defaults) with ``settings`` on top; on a
        resume, the checkpoint's configuration with ``config`` or ``settings`` on top.

        A resume whose checkpoint names a network by import path is refused unless
        ``trust_code`` or the model is given again (in ``settings`` or ``config``)."""
        snap = self.resume_snapshot()
        if snap is not None:
            resumed = resume_config(snap, settings, config)
            named = snap.meta.get("config", {}).get("model")
            if config is None and "model" not in settings and not self.trust_code and \
                    isinstance(named, str) and ":" in named:
                raise ConfigError(untrusted_code_message(
                    f"the checkpoint of {str(self.resume)!r}", [named],
                    python="sgdlab.fit(resume=RUN_DIR, trust_code=True)",
                    own="sgdlab.fit(resume=RUN_DIR, model=...)"))
            return resumed
        return config.replace(**settings) if config is not None else TrainConfig(**settings)

    def recorded_data(self):
        """``(X, y, label_column, task)`` to reload the data spec the checkpoint recorded."""
        d = self.resume_snapshot().meta.get("data", {})
        if not d.get("spec"):
            raise ConfigError(f"cannot resume {str(self.resume)!r} without data: the run was "
                              "trained on in-memory arrays, which a checkpoint does not hold; "
                              "pass the same X, y (or Dataset) again, or on the command "
                              "line the same data as a file: --resume RUN --data FILE")
        return d["spec"], None, d.get("label_column"), d.get("task")

    @staticmethod
    def recorded_processes(run_dir) -> int | None:
        """The number of processes the newest valid checkpoint of ``run_dir`` was written by
        (``None`` if there is none: the run itself then names the problem)."""
        try:
            with warnings.catch_warnings():  # a bad checkpoint is reported by the run itself
                warnings.simplefilter("ignore")
                return int(CheckpointStore(run_dir).latest().meta.get("processes", 1))
        except (RunDirError, OSError):
            return None

    # -- the checkpoint session ---------------------------------------------------------------
    @property
    def needs_session(self) -> bool:
        """Whether a (gradient-descent) run keeps a checkpoint session: it has a directory
        (over several processes: one all of them name), or recovers from divergence, which
        needs checkpoints in memory."""
        if self.placement is not None:
            return self.shared is not None
        return self.path is not None or self.policy.on_divergence == "halve-lr"

    def open_session(self, config: TrainConfig, fingerprint: str, *, data: dict,
                     data_name: str, files: dict | None = None) -> Session:
        """Check a resume against ``config`` and the data, write ``config.json`` and start the
        :class:`~sgdlab.engine.session.Session` the training loop checkpoints through.

        ``fingerprint``: the data's (:func:`sgdlab.engine.resume.fingerprint`); ``files``: a
        streamed run's shard files (:func:`sgdlab.engine.resume.shard_files`), to name the
        changed ones; ``data``: ``{"spec", "label_column", "task", "name"}``, what a resume
        needs to reload the data; ``data_name``: the name ``config.json`` gives the data.
        A changed setting, data or layout is a :class:`ConfigError` unless ``force``.
        """
        snap, policy, forced = self.resume_snapshot(), self.policy, None
        world = getattr(self.placement, "world", 1)
        layout = {"processes": world,
                  "local_devices": getattr(self.placement, "n_devices", 1) // world}
        if snap is not None:
            forced = check_resume(snap, config, fingerprint, self.shared, self.force, files,
                                  layout)
            same_checkpoint(self.placement, snap)
        meta = {"config": config.to_dict(), "data": {
            **data, "fingerprint": fingerprint, **({"files": files} if files else {})},
            "seed": config.seed, "forced_changes": forced or [], "resumed_from_step": None,
            **layout, "policy": {k: getattr(policy, k)
                                 for k in ("every", "keep", "on_divergence", "max_retries")}}
        if snap is not None:
            meta["divergence_retries"] = snap.meta.get("divergence_retries", [])
            meta["forced_changes"] = snap.meta.get("forced_changes", []) + (forced or [])
            meta["resumed_from_step"] = snap.step
        if self.path is not None:
            cfg = config.to_dict()
            cfg["data"] = data_name
            write_json_atomic(Path(self.path) / "config.json", cfg)
        # Every process of a run handles SIGTERM/SIGINT (the launcher forwards them), so all
        # stop at one boundary; only a run without any directory leaves them alone.
        self.session = Session(
            self.path, policy if self.shared is not None else
            dataclasses.replace(policy, handle_signals=False), meta, snap,
            lr=config.lr if policy.on_divergence == "halve-lr" else None)
        return self.session

    def run(self, job: Job, config: TrainConfig) -> FitResult:
        """Train ``job`` (:func:`~sgdlab.engine.job.train_job`): through the session with
        divergence recovery when one is open
        (:func:`~sgdlab.engine.resume.train_with_recovery`), its record (checkpoints written,
        the signal that stopped it, resumed step, forced changes) in ``result.extra``."""
        session = self.session
        if session is None:
            return train_job(job, config)
        result = train_with_recovery(job, config, session)
        result.extra["checkpoints_written"] = session.checkpoints_written
        if session.signal is not None:
            result.extra["signal"] = int(session.signal)
        for key in ("resumed_from_step", "forced_changes"):
            if session.meta.get(key):
                result.extra[key] = session.meta[key]
        return result

    # -- the end ------------------------------------------------------------------------------
    def finish(self, result: FitResult, *, data_name: str = "", plots: bool = True) -> Path | None:
        """Write the final files (config.json, history, metrics, model, plots; no plots for an
        interrupted run) on the writing process; its path, or ``None`` where nothing is
        written."""
        if self.path is None:
            return None
        from .report.run import write_run  # lazy: plotting is not needed to train
        write_run(self.path, result, data_name=data_name,
                  plots=plots and result.status != "interrupted")
        if self.session is not None:
            self.session.close()  # the history file, before its directory is swapped in
            self.session = None
        self.path = self._claim.commit() if self._claim is not None else Path(self.path)
        return self.path


def same_checkpoint(placement, snap) -> None:
    """Refuse unless every process read the checkpoint of the same step.

    Each process reads the newest valid checkpoint of the shared run directory itself; they
    differ only if the directory is not really shared (say, a local copy per machine).
    """
    if getattr(placement, "world", 1) == 1:
        return
    # float32 is exact below 2**24: send the step as two 20-bit halves.
    parts = placement.gather([float(snap.step >> 20), float(snap.step & 0xFFFFF)])
    steps = [int(hi) << 20 | int(lo) for hi, lo in parts]
    if len(set(steps)) > 1:
        raise ConfigError(
            f"the processes read checkpoints of different steps ({', '.join(map(str, steps))}"
            "); --resume needs the run directory on a filesystem every process shares")
