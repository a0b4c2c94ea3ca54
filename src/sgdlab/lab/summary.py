"""From finished runs to per-batch-size figures, the probe, the noise scale and the verdict.

Per (batch size, learning rate) over its seeds: the median and range of training seconds to
the target, medians of steps, epochs and examples to the target, throughput (examples per
training second), final validation metric and compile time (the largest over seeds: the first
compile, later ones may come from the compilation cache). Per batch size the learning rate with
the lowest median time is kept (ties: the higher final metric).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..data.dataset import Dataset
from ..engine.config import TrainConfig
from ..engine.fit import train
from ..engine.history import History
from ..engine.rundir import environment, write_json_atomic, write_text_atomic
from .measure import crossing, final_metric, metric_name
from .recommend import recommend


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
    best = max(float(np.median(v)) for v in groups.values())
    return math.floor(100 * 0.99 * best) / 100 if best > 0 else best


def per_run_rows(records: list, target: float, metric: str) -> list:
    rows = []
    for r in records:
        c = crossing(r["history"], target, metric)
        s = r["summary"]
        rows.append({"key": r["key"], "batch_size": r["batch_size"], "lr": r["lr"],
                     "lr_multiplier": r["lr_multiplier"], "seed": r["seed"],
                     "status": r["status"], "reached": c["reached"],
                     "time_to_target": c["train_seconds"], "steps_to_target": c["step"],
                     "epochs_to_target": c["epoch"], "examples_to_target": c["examples"],
                     "final": final_metric(r["history"], metric), "steps": s.get("steps"),
                     "train_seconds": s.get("train_seconds"),
                     "eval_seconds": s.get("eval_seconds"),
                     "compile_seconds": s.get("compile_seconds"),
                     "examples_per_second": s.get("examples_per_second")})
    return rows


def _med(values) -> float:
    v = np.asarray([math.nan if x is None else x for x in values], float)
    v = v[~np.isnan(v)]
    return float(np.median(v)) if len(v) else math.nan


def group_rows(per_run: list) -> list:
    """One row per (batch size, lr) with medians and ranges over seeds."""
    groups: dict = {}
    for r in per_run:
        groups.setdefault((r["batch_size"], r["lr"]), []).append(r)
    out = []
    for (b, lr), rs in sorted(groups.items()):
        times = [r["time_to_target"] for r in rs]
        out.append({
            "batch_size": b, "lr": lr, "lr_multiplier": rs[0]["lr_multiplier"],
            "seeds": len(rs), "reached": sum(r["reached"] for r in rs),
            "diverged": sum(r["status"] == "diverged" for r in rs),
            "time_median": float(np.median(times)), "time_low": float(min(times)),
            "time_high": float(max(times)),
            "steps_median": float(np.median([r["steps_to_target"] for r in rs])),
            "epochs_median": float(np.median([r["epochs_to_target"] for r in rs])),
            "examples_median": float(np.median([r["examples_to_target"] for r in rs])),
            "throughput": _med(r["examples_per_second"] for r in rs),
            "final_median": _med(r["final"] for r in rs),
            "compile_seconds": max((r["compile_seconds"] or 0.0) for r in rs),
        })
    return out


def best_per_batch(groups: list) -> list:
    """Per batch size, the learning rate with the lowest median time to target.

    Each row also gets ``steps_best`` (and ``steps_best_lr``): the fewest median steps to the
    target over the grid, the quantity Shallue et al. plot (each batch size at its own best
    learning rate measured in steps, not in seconds).
    """
    best: dict = {}
    for g in groups:
        cur = best.get(g["batch_size"])
        key = (g["time_median"], -_low(g["final_median"]))
        if cur is None or key < (cur["time_median"], -_low(cur["final_median"])):
            best[g["batch_size"]] = g
    rows = []
    for b in sorted(best):
        fewest = min((g for g in groups if g["batch_size"] == b),
                     key=lambda g: (g["steps_median"], g["lr"]))
        rows.append({**best[b], "steps_best": fewest["steps_median"],
                     "steps_best_lr": fewest["lr"]})
    return rows


def _low(v: float) -> float:
    return -math.inf if math.isnan(v) else v


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
              validation: Dataset, *, emit, out=None, fingerprint: str = "", model=None,
              loss=None) -> SweepResult:
    metric = metric_name(records[0]["history"]) if records else "val_accuracy"
    target = sweep.target if sweep.target is not None else auto_target(records, metric)
    per_run = per_run_rows(records, target, metric)
    groups = group_rows(per_run)
    per_batch = best_per_batch(groups)
    res = SweepResult(sweep.to_dict(), base.to_dict(), train_part.name, train_part.n,
                      validation.n, metric, target, sweep.target is None, records, per_run,
                      groups, per_batch, environment=environment())
    chosen = {g["batch_size"]: g["lr"] for g in per_batch}
    if sweep.probe:
        emit({"event": "phase", "name": "throughput probe"})
        from .throughput import probe_throughput
        configs = [base.replace(batch_size=b, lr=lr, eval_every=next(
            r["config"]["eval_every"] for r in records if r["batch_size"] == b))
            for b, lr in chosen.items()]
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
        key = {"data": fingerprint, "base": base.to_dict(), "sweep": sweep.to_dict(),
               "target": target}
        both = _cached(out, "noise.json", key, lambda: measure_noise(
            sweep, base, train_part, validation, target, chosen, model, loss))
        # JSON stores a non-finite estimate as null; read it back as NaN.
        res.noise = {k: math.nan if v is None else v for k, v in both["estimate"].items()}
        res.noise_trace = both["trace"]
        emit({"event": "probe", "name": "noise"})
    rec = recommend(per_batch, target=target, metric=metric, noise=res.noise,
                    seeds=sweep.seeds)
    res.recommendation = rec.to_dict()
    return res


def measure_noise(sweep, base: TrainConfig, train_part: Dataset, validation: Dataset,
                  target: float, chosen: dict, model=None, loss=None) -> dict:
    """A short run with a :class:`NoiseScaleMeter` attached, at the swept batch size nearest
    (in ratio) to the base batch, with that batch size's chosen learning rate (``chosen`` maps
    batch size to learning rate), so its compiled kernel is one the sweep already built.

    The estimate pools the rows in the second half of the run up to where it first reached the
    target (McCandlish et al. relate the critical batch size to the noise scale *at* the loss
    one trains to); the whole run when it never does.
    """
    from .noise import NoiseScaleMeter
    from .prepare import prepare
    from .sweep import eval_schedule_for, parse_budget
    n = train_part.n
    sizes = sorted(chosen)
    b = min(sizes, key=lambda s: (abs(math.log(s / sweep.base_batch)), s))
    small, big = sweep.noise_batches or ((sizes[0], sizes[-1]) if len(sizes) > 1 and
                                         sizes[0] < sizes[-1] else (1, min(256, n)))
    cfg = base.replace(batch_size=b, lr=chosen[b],
                       eval_every=eval_schedule_for(sweep, n, b, base.drop_last),
                       target=target if math.isfinite(target) else None,
                       **parse_budget(sweep.budget))
    meter = NoiseScaleMeter(prepare(train_part, cfg, model, loss), l2=cfg.l2, b_small=small,
                            b_big=big, draws=sweep.noise_draws, seed=base.seed)
    result = train(train_part, validation, cfg, model=model, loss=loss, callback=meter)
    c = crossing(result.history, target) if math.isfinite(target) else {"reached": False}
    est = meter.estimate(up_to_step=c["step"] if c["reached"] else None).to_dict()
    est.update(batch_size=b, lr=cfg.lr, reached_target=c["reached"])
    return {"estimate": est, "trace": meter.trace()}


CSV_RUN = ("key", "batch_size", "lr", "lr_multiplier", "seed", "status", "reached",
           "time_to_target", "steps_to_target", "epochs_to_target", "examples_to_target",
           "final", "steps", "train_seconds", "eval_seconds", "compile_seconds",
           "examples_per_second")
CSV_BATCH = ("batch_size", "lr", "seeds", "reached", "diverged", "time_median", "time_low",
             "time_high", "steps_median", "epochs_median", "examples_median", "throughput",
             "final_median", "compile_seconds", "steps_best", "steps_best_lr")


def _csv(rows: list, cols) -> str:
    lines = [",".join(cols)]
    for r in rows:
        lines.append(",".join("" if r.get(c) is None else repr(r[c]) if isinstance(r[c], float)
                              else str(r[c]) for c in cols))
    return "\n".join(lines) + "\n"


def write_tables(result: SweepResult, out) -> None:
    """``sweep.json`` (everything but histories), ``runs.csv`` and ``summary.csv``."""
    out = Path(out)
    write_json_atomic(out / "sweep.json", result.to_dict())
    write_text_atomic(out / "runs.csv", _csv(result.per_run, CSV_RUN))
    write_text_atomic(out / "summary.csv", _csv(result.per_batch, CSV_BATCH))
