"""From finished runs to per-batch-size figures, the probe, the noise scales and the verdict.

Per (batch size, learning rate) point over its seeds (``groups``): the median and range of
training seconds to the target (``inf`` for a seed that missed), medians of steps (whole
steps: the interpolated crossing rounded up), epochs and examples to the target, throughput
(examples per training second), final validation metric and compile time (the largest over
seeds). Per batch size (``per_batch``) the point ranked best by :func:`.lr_search.rank` is kept:
every seed reached, fewest median steps (within a batch size every learning rate runs the same
compiled program, so fewest steps is fastest, without timing noise).

``decomposition`` sets, per batch size, the measured median time beside steps x the probe's
seconds per step, and the runs' own seconds per step (training seconds / steps).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..data.dataset import Dataset
from ..engine.config import TrainConfig
from ..engine.history import History
from ..engine.rundir import environment, write_json_atomic, write_text_atomic
from .lr_search import Outcome, at_edge, closeness, rank
from .measure import crossing, final_metric, median, metric_name, target_from
from .recommend import recommend, status_text


@dataclass
class SweepResult:
    """Everything a sweep found; ``to_dict()`` is what ``sweep.json`` holds."""

    sweep: dict
    base: dict
    data: str
    n_train: int
    n_validation: int
    metric: str
    target: float
    target_auto: bool
    records: list = field(repr=False)
    per_run: list = field(default_factory=list)
    groups: list = field(default_factory=list)
    per_batch: list = field(default_factory=list)
    throughput: list | None = None
    noise: dict | None = None
    noise_trace: list = field(default_factory=list)
    recommendation: dict = field(default_factory=dict)
    environment: dict = field(default_factory=dict)
    seconds: float = 0.0
    target_source: str = ""
    decomposition: list = field(default_factory=list)
    confirmation: dict | None = None
    compilations: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "records"}

    def histories(self) -> dict:
        """``{key: History}`` of every run."""
        return {r["key"]: History(r["history"]) for r in self.records}


def auto_target(records: list, metric: str) -> float:
    """0.99 x the best median final metric over (batch size, lr) groups, floored to 0.01."""
    groups: dict = {}
    for r in records:
        v = final_metric(r["history"], metric)
        if r["status"] != "diverged" and not math.isnan(v):
            groups.setdefault((r["batch_size"], r["lr"]), []).append(v)
    if not groups:
        return math.nan
    return target_from(max(median(v) for v in groups.values()))


def per_run_rows(records: list, target: float, metric: str) -> list:
    rows = []
    for r in records:
        c = crossing(r["history"], target, metric)
        s = r["summary"]
        rows.append({"key": r["key"], "batch_size": r["batch_size"], "lr": r["lr"],
                     "lr_multiplier": r["lr_multiplier"], "seed": r["seed"],
                     "status": r["status"], "reached": c["reached"],
                     "time_to_target": c["train_seconds"],
                     "steps_to_target": float(math.ceil(c["step"] - 1e-9)) if c["reached"]
                     else math.inf,
                     "epochs_to_target": c["epoch"], "examples_to_target": c["examples"],
                     "final": final_metric(r["history"], metric), "steps": s.get("steps"),
                     "train_seconds": s.get("train_seconds"),
                     "eval_seconds": s.get("eval_seconds"),
                     "compile_seconds": s.get("compile_seconds"),
                     "examples_per_second": s.get("examples_per_second")})
    return rows


def _whole(v: float) -> float:
    """A median step count as a whole number of steps (rounded up); ``inf`` stays."""
    return float(math.ceil(v - 1e-9)) if math.isfinite(v) else v


def _med(values) -> float:
    v = np.asarray([math.nan if x is None else x for x in values], float)
    v = v[~np.isnan(v)]
    return float(np.median(v)) if len(v) else math.nan


def group_rows(per_run: list) -> list:
    """One row per (batch size, lr) point with medians and ranges over seeds; ``order`` is
    the point's position in the order its batch size tried them."""
    groups: dict = {}
    for r in per_run:
        groups.setdefault((r["batch_size"], r["lr"]), []).append(r)
    order: dict = {}
    for b, lr in groups:  # dicts keep insertion order: the order the runs were made
        order[(b, lr)] = sum(1 for k in order if k[0] == b)
    out = []
    for (b, lr), rs in sorted(groups.items()):
        times = [r["time_to_target"] for r in rs]
        out.append({
            "batch_size": b, "lr": lr, "lr_multiplier": rs[0]["lr_multiplier"],
            "seeds": len(rs), "reached": sum(r["reached"] for r in rs),
            "diverged": sum(r["status"] == "diverged" for r in rs),
            "time_median": median(times), "time_low": float(min(times)),
            "time_high": float(max(times)),
            # Whole steps: with an even number of seeds the upper of the two middle ones.
            "steps_median": _whole(median([r["steps_to_target"] for r in rs])),
            "epochs_median": median([r["epochs_to_target"] for r in rs]),
            "examples_median": median([r["examples_to_target"] for r in rs]),
            "throughput": _med(r["examples_per_second"] for r in rs),
            "final_median": _med(r["final"] for r in rs),
            "compile_seconds": max((r["compile_seconds"] or 0.0) for r in rs),
            "run_step_seconds": _med(r["train_seconds"] / r["steps"] for r in rs
                                     if r["steps"] and r["train_seconds"] is not None),
            "order": order[(b, lr)], "chosen": False,
        })
        out[-1]["status_text"] = status_text(out[-1]["reached"], out[-1]["diverged"], len(rs))
    return out


def outcome_of(group: dict) -> Outcome:
    """A group row as the search's :class:`~.lr_search.Outcome`."""
    return Outcome(lr=group["lr"], seeds=group["seeds"], reached=group["reached"],
                   diverged=group["diverged"], steps_median=group["steps_median"],
                   final_median=group["final_median"])


def best_per_batch(groups: list) -> list:
    """Per batch size, the point ranked best by :func:`.lr_search.rank` (marked ``chosen``).

    Each row also gets ``points`` (learning rates tried) and ``steps_best`` (with
    ``steps_best_lr``): the fewest median steps to the target over the points tried, the
    quantity Shallue et al. plot (each batch size at its own best learning rate, in steps).
    """
    rows = []
    for b in sorted({g["batch_size"] for g in groups}):
        mine = [g for g in groups if g["batch_size"] == b]
        best = min(mine, key=lambda g: rank(outcome_of(g))
                   + (closeness(g["lr_multiplier"], 1.0) if g.get("lr_multiplier") else 0.0,))
        best["chosen"] = True
        fewest = min(mine, key=lambda g: (g["steps_median"], g["lr"]))
        rows.append({**best, "points": len(mine), "steps_best": fewest["steps_median"],
                     "steps_best_lr": fewest["lr"],
                     "at_edge": at_edge([outcome_of(g) for g in mine], best["lr"])})
    return rows


def _cached(out, name: str, key: dict, compute):
    """``compute()``, stored in ``out/name`` with ``key`` and reused while the key matches."""
    path = Path(out) / name if out else None
    key = json.loads(json.dumps(key, default=str))
    if path is not None and path.is_file():
        try:
            stored = json.loads(path.read_text())
            if stored.get("key") == key:
                return stored["value"]
        except (OSError, ValueError, KeyError):
            pass
    value = compute()
    if path is not None:
        write_json_atomic(path, {"key": key, "value": value})
    return value


def summarise(records: list, sweep, base: TrainConfig, train_part: Dataset,
              validation: Dataset, *, target: float | None, config_for, emit, out=None,
              fingerprint: str = "", target_source: str = "", model=None,
              loss=None) -> SweepResult:
    """Tables, probe, noise scales, decomposition and recommendation of a sweep's runs.

    ``records`` are the search phase's runs; ``target`` None means "choose it from the runs"
    (0.99 x the best median final value, see :func:`auto_target`). ``config_for(B, lr,
    target)`` returns the configuration a run of that batch size and learning rate used, so
    the probe times that run's program and the noise run trains like it.
    """
    metric = metric_name(records[0]["history"]) if records else "val_accuracy"
    target_auto = sweep.target is None
    if target is None:
        target = auto_target(records, metric)
        target_source = "0.99 x the best median final value of the runs, floored to 0.01"
    per_run = per_run_rows(records, target, metric)
    groups = group_rows(per_run)
    per_batch = best_per_batch(groups)
    res = SweepResult(sweep.to_dict(), base.to_dict(), train_part.name, train_part.n,
                      validation.n, metric, target, target_auto, records, per_run,
                      groups, per_batch, environment=environment(),
                      target_source=target_source)
    chosen = {g["batch_size"]: g["lr"] for g in per_batch}
    if sweep.probe:
        emit({"event": "phase", "name": "throughput probe"})
        from .throughput import probe_throughput
        configs = [config_for(b, lr, None) for b, lr in chosen.items()]
        done = []  # probe events sent; a probe reused from disk sends them all at once

        def progress(event):
            done.append(event)
            emit(event)

        res.throughput = _cached(out, "throughput.json",
                                 {"data": fingerprint, "configs": [c.to_dict() for c in configs]},
                                 lambda: probe_throughput(train_part, configs, model=model,
                                                          loss=loss, progress=progress))
        if len(done) < len(configs):
            emit({"event": "probe", "count": len(configs) - len(done)})
    if sweep.noise:
        emit({"event": "phase", "name": "gradient noise scale"})
        from .sweep_noise import measure_noise
        b = nearest_to_base(chosen, sweep.base_batch)
        cfg = config_for(b, chosen[b], target if math.isfinite(target) else None)
        key = {"data": fingerprint, "config": cfg.to_dict(), "sweep": sweep.to_dict()}
        both = _cached(out, "noise.json", key, lambda: measure_noise(
            train_part, validation, cfg, sorted(chosen), sweep.noise_batches,
            sweep.noise_draws, model=model, loss=loss))
        # JSON stores a non-finite estimate as null; read it back as NaN.
        res.noise = {k: math.nan if v is None else v for k, v in both["estimate"].items()}
        res.noise_trace = both["trace"]
        emit({"event": "probe", "name": "noise"})
    per_call = {}
    for b, lr in chosen.items():
        sched = config_for(b, lr, None).eval_schedule
        per_call[b] = sched.every_steps or 0
    res.decomposition = decomposition_rows(per_batch, res.throughput,
                                           {b: k for b, k in per_call.items() if k})
    for row, d in zip(per_batch, res.decomposition):
        row.update(probe_step_seconds=d["probe_step_seconds"],
                   predicted_seconds=d["predicted_seconds"])
    times = {g["batch_size"]: [r["time_to_target"] for r in per_run
                               if (r["batch_size"], r["lr"]) == (g["batch_size"], g["lr"])]
             for g in per_batch}
    rec = recommend(per_batch, target=target, metric=metric, noise=res.noise,
                    seeds=sweep.seeds, times_by_batch=times,
                    decomposition=res.decomposition if res.throughput else None,
                    noise_trace=res.noise_trace)
    res.recommendation = rec.to_dict()
    return res


def nearest_to_base(sizes, base_batch: int) -> int:
    """The batch size nearest (in ratio) to the base batch; the smaller one on a tie."""
    return min(sizes, key=lambda s: (abs(math.log(s / base_batch)), s))


def decomposition_rows(per_batch: list, throughput: list | None, steps_per_call: dict) -> list:
    """Time to target = steps x seconds per step (+ calls x seconds per call), per batch size.

    ``steps`` x the probe's ``probe_step_seconds`` is the compute; a run is cut into
    ``calls = ceil(steps / steps_per_call[B])`` compiled calls by its evaluations, each
    costing the probe's ``call_seconds`` more. ``predicted_seconds`` is their sum, beside the
    ``measured_seconds`` (median time to target) and the runs' own ``run_step_seconds``;
    ``ratio`` = measured / predicted (None where a factor is missing).
    """
    probe = {p["batch_size"]: p for p in throughput or []}
    rows = []
    for g in per_batch:
        b, steps = g["batch_size"], g["steps_median"]
        p = probe.get(b)
        row = {"batch_size": b, "steps": steps if math.isfinite(steps) else None,
               "probe_step_seconds": p["step_seconds"] if p else None,
               "call_seconds": p.get("call_seconds") if p else None,
               "calls": None, "compute_seconds": None, "overhead_seconds": None,
               "predicted_seconds": None,
               "measured_seconds": g["time_median"] if math.isfinite(g["time_median"]) else None,
               "run_step_seconds": g["run_step_seconds"]
               if math.isfinite(g["run_step_seconds"]) else None, "ratio": None}
        if p and row["steps"] is not None:
            calls = math.ceil(steps / max(1, steps_per_call.get(b, p["chunk_steps"])))
            row.update(calls=calls, compute_seconds=steps * p["step_seconds"],
                       overhead_seconds=calls * (p.get("call_seconds") or 0.0))
            row["predicted_seconds"] = row["compute_seconds"] + row["overhead_seconds"]
            if row["measured_seconds"]:
                row["ratio"] = row["measured_seconds"] / row["predicted_seconds"]
        rows.append(row)
    return rows


def confirmation_row(records: list, target: float) -> dict:
    """Median and range of time to target, steps and outcome of the confirmation runs."""
    runs = per_run_rows(records, target, metric_name(records[0]["history"]))
    times = [r["time_to_target"] for r in runs]
    reached = sum(r["reached"] for r in runs)
    diverged = sum(r["status"] == "diverged" for r in runs)
    return {"batch_size": records[0]["batch_size"], "lr": records[0]["lr"],
            "seeds": [r["seed"] for r in records], "runs": len(records), "reached": reached,
            "diverged": diverged, "status_text": status_text(reached, diverged, len(records)),
            "time_median": median(times), "time_low": float(min(times)),
            "time_high": float(max(times)),
            "steps_median": _whole(median([r["steps_to_target"] for r in runs]))}


CSV_RUN = ("key", "batch_size", "lr", "lr_multiplier", "seed", "status", "reached",
           "time_to_target", "steps_to_target", "epochs_to_target", "examples_to_target",
           "final", "steps", "train_seconds", "eval_seconds", "compile_seconds",
           "examples_per_second")
CSV_POINT = ("batch_size", "lr", "lr_multiplier", "order", "chosen", "seeds", "reached",
             "diverged", "time_median", "time_low", "time_high", "steps_median",
             "final_median")
CSV_BATCH = ("batch_size", "lr", "lr_multiplier", "points", "seeds", "reached", "diverged",
             "time_median", "time_low", "time_high", "steps_median", "epochs_median",
             "examples_median", "throughput", "final_median", "compile_seconds", "steps_best",
             "steps_best_lr", "run_step_seconds", "probe_step_seconds", "predicted_seconds")


def _csv(rows: list, cols) -> str:
    lines = [",".join(cols)]
    for r in rows:
        # A missing or non-finite figure (a seed that never reached) is an empty cell.
        lines.append(",".join("" if r.get(c) is None or (isinstance(r[c], float)
                                                         and not math.isfinite(r[c]))
                              else repr(r[c]) if isinstance(r[c], float) else str(r[c])
                              for c in cols))
    return "\n".join(lines) + "\n"


def write_tables(result: SweepResult, out) -> None:
    """``sweep.json`` (everything but histories), ``runs.csv`` (every search run),
    ``points.csv`` (every learning rate tried) and ``summary.csv`` (per batch size)."""
    out = Path(out)
    write_json_atomic(out / "sweep.json", result.to_dict())
    write_text_atomic(out / "runs.csv", _csv(result.per_run, CSV_RUN))
    write_text_atomic(out / "points.csv", _csv(result.groups, CSV_POINT))
    write_text_atomic(out / "summary.csv", _csv(result.per_batch, CSV_BATCH))
