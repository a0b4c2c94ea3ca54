"""Resuming a run: what may change, how data is recognised, and divergence recovery.

A resume continues the newest valid checkpoint of a run directory bit-exactly: same
parameters, optimiser state, batch order and history (time columns aside) as if the run had
never stopped. That is only true if nothing that shapes the trajectory changed, so before
resuming :func:`check_resume` compares

* every setting except the stopping rules (:data:`FREE_FIELDS`: ``epochs``, ``max_steps``,
  ``max_time``, ``target``, ``eval_every``), which a resume may change to train longer; with a
  non-constant learning-rate schedule ``epochs``/``max_steps`` set the schedule's length and are
  compared too;
* the data fingerprint, a sha256 over the training (and explicit validation) arrays, labels,
  task and classes, so an edited data file is noticed even under the same name. A shard set
  is fingerprinted by its manifest instead (:func:`shard_fingerprint`: rows, features, task,
  classes, block layout and every shard file's sha256), so a resume reads no data to check
  it; a changed shard set is named file by file (:func:`data_changes`).

* the layout (:func:`layout_changes`): the number of processes and of devices per process
  (``local_devices``). The update of a
  step sums over them in another order when they change, so the run would no longer be
  bit-identical. With ``force`` an in-memory run continues: the global batch order is a pure
  function of the seed and the position, so each process just takes its new share of the same
  global batches. A streamed run cannot, even with ``force``: process ``r`` of ``P`` reads the
  blocks ``r, r + P, ...``, so its batches (and steps per epoch) depend on ``P``.

A difference is refused with a :class:`ConfigError` naming each changed field, unless
``force``; forced changes are recorded in the run's metrics (``forced_changes``).
"""

from __future__ import annotations

import hashlib
import json

import numpy as np

from ..data.shards import ShardSet
from ..errors import ConfigError
from .checkpoint import Snapshot
from .config import OBJECT_MARK, TrainConfig
from .job import train_job

#: Settings a resume may change without --force: they say when to stop or when to look.
FREE_FIELDS = ("epochs", "max_steps", "max_time", "target", "eval_every", "extra")


def fingerprint(train, validation=None) -> str:
    """``"sha256:<hex>"`` of the data a run sees (features, labels, task, classes).

    A :class:`Dataset` is hashed on its loaded arrays, so the same data gives the same
    fingerprint whichever file format it came from; any changed value changes it. A
    :class:`ShardSet` is hashed on its manifest (see :func:`shard_files`).
    """
    h = hashlib.sha256()
    for ds in (train, validation):
        if ds is None:
            h.update(b"<none>")
        elif isinstance(ds, ShardSet):
            h.update(repr((ds.task, [str(c) for c in ds.classes], ds.n, ds.d, str(ds.y_dtype),
                           ds.block_sizes.tolist(), sorted(shard_files(ds).items()))).encode())
        else:
            X, y = np.ascontiguousarray(ds.X), np.ascontiguousarray(ds.y)
            h.update(repr((ds.task, [str(c) for c in ds.classes], X.shape, X.dtype.str,
                           y.dtype.str)).encode())
            h.update(X.tobytes())
            h.update(y.tobytes())
    return "sha256:" + h.hexdigest()


def shard_files(shards: ShardSet) -> dict[str, str]:
    """``{file name: sha256}`` of every shard file, as the manifest records them.

    The converter writes the manifest last, from the bytes it wrote, so a shard set converted
    again from other data has other checksums; ``ShardSet.verify`` re-reads the files.
    """
    return {s[key]: s[f"sha256_{key}"] for s in shards.shards for key in ("x", "y")}


def data_changes(saved: dict, data_fingerprint: str, files: dict | None = None) -> list[dict]:
    """``[{"field", "was", "now"}]`` for changed data (empty if the fingerprint is the same).

    With the shard ``files`` of both runs (see :func:`shard_files`) each changed, added or
    removed file is named; otherwise (or if only the layout or validation data changed) the
    fingerprint itself.
    """
    if saved.get("fingerprint") == data_fingerprint:
        return []
    was = saved.get("files") or {}
    named = [{"field": f"shard file {name}", "was": was.get(name), "now": files.get(name)}
             for name in sorted(set(was) | set(files or {}))
             if files is not None and was.get(name) != files.get(name)]
    return named or [{"field": "data fingerprint", "was": saved.get("fingerprint"),
                      "now": data_fingerprint}]


def layout_changes(saved_meta: dict, layout: dict, streamed: bool) -> list[dict]:
    """``[{"field", "was", "now"}]`` for ``processes`` / ``local_devices`` that differ.

    ``layout``: ``{"processes": P, "local_devices": D}`` of this run (D devices per process) (checkpoints without it came
    from one process on one device). A streamed run is refused outright (see the module
    docstring).
    """
    out = [{"field": key, "was": int(saved_meta.get(key, 1)), "now": int(layout[key])}
           for key in ("processes", "local_devices") if int(saved_meta.get(key, 1)) != layout[key]]
    if out and streamed:
        what = "; ".join(f"{c['field']} was {c['was']}, now {c['now']}" for c in out)
        raise ConfigError(
            f"cannot resume a streamed run with another layout ({what}): process r of P "
            "streams the blocks r, r + P, ..., so the batches depend on the number of "
            "processes; resume with the run's --processes, even --force cannot change it")
    return out


def _norm(v):
    """Compare settings as they are stored (JSON: tuples become lists)."""
    return json.loads(json.dumps(v, default=str))


def config_changes(saved: dict, config: TrainConfig) -> list[dict]:
    """``[{"field", "was", "now"}]`` for every trajectory-shaping setting that differs."""
    now = config.to_dict()
    free = set(FREE_FIELDS)
    if now.get("schedule", "constant") != "constant":
        free -= {"epochs", "max_steps"}
    out = []
    for key, value in now.items():
        if key in free:
            continue
        was = saved.get(key)
        if _norm(was) != _norm(value):
            out.append({"field": key, "was": _norm(was), "now": _norm(value)})
    return out


def check_resume(snap: Snapshot, config: TrainConfig, data_fingerprint: str, run_dir,
                 force: bool = False, files: dict | None = None,
                 layout: dict | None = None) -> list[dict]:
    """The forced changes (empty if none); :class:`ConfigError` if any and not ``force``.

    ``files``: the shard files of a streamed run (:func:`shard_files`), to name changed ones.
    ``layout``: this run's ``{"processes", "local_devices"}`` (see :func:`layout_changes`).
    """
    changes = config_changes(snap.meta.get("config", {}), config)
    changes += data_changes(snap.meta.get("data", {}), data_fingerprint, files)
    if layout is not None:
        changes += layout_changes(snap.meta, layout, streamed=files is not None)
    if changes and not force:
        what = "; ".join(f"{c['field']} was {c['was']!r}, now {c['now']!r}" for c in changes)
        names = ", ".join(c["field"] for c in changes)
        raise ConfigError(
            f"cannot resume {str(run_dir)!r} from step {snap.step}: {names} changed since the "
            f"checkpoint ({what}); a resume only continues the same run exactly. Resume with "
            "the original settings and data, start a new run, or pass --force (force=True) to "
            "continue anyway (recorded in metrics.json as forced_changes)")
    return changes


def resume_config(snap: Snapshot, given: dict | None = None,
                  config: TrainConfig | None = None) -> TrainConfig:
    """The checkpoint's config, with ``config`` (a whole config) or ``given`` settings on top."""
    if config is not None:
        return config.replace(**(given or {}))
    saved = {k: v for k, v in snap.meta.get("config", {}).items()}
    saved.update(given or {})
    objects = sorted(k for k, v in saved.items()
                     if isinstance(v, str) and v.startswith(OBJECT_MARK))
    if objects:
        raise ConfigError(f"this run was trained with Python object setting(s) "
                          f"{', '.join(objects)}, which a checkpoint cannot hold; pass them "
                          f"again: fit(resume=..., {', '.join(f'{k}=...' for k in objects)})")
    return TrainConfig.from_dict(saved)


def train_with_recovery(job, config: TrainConfig, session):
    """Train ``job`` with ``config`` (:func:`~sgdlab.engine.job.train_job`); on divergence
    with ``halve-lr``, go back.

    Each retry restarts from the session's last good checkpoint with half the learning rate
    (``lr <- lr / 2``, and every rate a batch schedule's phase gives), at most
    ``policy.max_retries`` times. Every history row then carries
    the ``lr`` in effect, and ``result.extra["divergence_retries"]`` lists each retry:
    ``{"diverged_at_step", "restart_step", "lr_from", "lr_to"}``.
    """
    policy = session.policy
    retries = list(session.meta.get("divergence_retries", []))
    while True:
        result = train_job(job, config)
        if result.status != "diverged" or policy.on_divergence != "halve-lr" \
                or len(retries) >= policy.max_retries or session.last_good is None:
            break
        back = session.last_good
        retries.append({"diverged_at_step": result.diverged_at_step,
                        "restart_step": back.step, "lr_from": config.lr,
                        "lr_to": config.lr / 2})
        halved = {"lr": config.lr / 2}
        if config.batch_schedule is not None:  # the rates its phases give halve too
            halved["batch_schedule"] = config.batch_phases.with_lr_factor(0.5).text
        config = config.replace(**halved)
        session.meta.update(config=config.to_dict(), divergence_retries=retries)
        session.lr = config.lr
        session.pending = back
    if retries:
        result.extra["divergence_retries"] = retries
        if result.status == "diverged":
            result.message += f" (after {len(retries)} learning-rate halvings)"
    return result
