"""What a sweep found, as typed records: the result the report and the command line render.

:class:`SweepResult` holds the tables (:mod:`.tables`), the probe, the noise scales, the
confirmation, the recommendation and what the sweep cost; ``to_dict()`` is ``sweep.json``.
Every record is frozen: the lab builds them once, readers read attributes.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path

from ..engine.history import History
from ..engine.rundir import write_json_atomic, write_text_atomic
from .tables import BatchRow, PointRow, RunRow, csv_text
from .warmup_records import WarmupResult


@dataclass(frozen=True)
class ProbeRow:
    """The throughput probe at one batch size (:func:`.throughput.probe_throughput`)."""

    batch_size: int
    chunk_steps: int
    step_seconds: float
    call_seconds: float
    examples_per_second: float
    step_cost_ratio: float
    vectorisation_gain: float
    compile_seconds: float

    @property
    def example_seconds(self) -> float:
        return self.step_seconds / self.batch_size

    @classmethod
    def from_dict(cls, d: dict) -> "ProbeRow":
        """From a stored row; ``KeyError``/``TypeError``/``ValueError`` on another shape."""
        row = cls(**{f.name: d[f.name] for f in dataclasses.fields(cls)})
        if not all(isinstance(getattr(row, f.name), (int, float))
                   and not isinstance(getattr(row, f.name), bool)
                   for f in dataclasses.fields(cls)) or not row.step_seconds > 0:
            raise ValueError(f"not a probe row: {d!r}")
        return row


@dataclass(frozen=True)
class NoiseResult:
    """The gradient noise scales of the sweep's noise run (:mod:`.sweep_noise`).

    ``b_simple`` (interval ``low``-``high``) is the two-batch estimate ``tr(Sigma)/|G|^2``
    pooled over the run's second half, from ``draws`` pairs of batches of ``b_small`` and
    ``b_big``; ``b_noise`` (interval) is ``tr(H Sigma)/(G^T H G)`` at the run's end, and
    ``b_simple_at_target`` the same ``tr(Sigma)/|G|^2`` from the per-example gradients of that
    measurement (a second estimator of the same quantity, at one point). ``trace`` is the
    smoothed two-batch estimate after each evaluation row, ``((step, b_simple), ...)``.
    """

    batch_size: int
    lr: float
    reached_target: bool
    b_simple: float
    low: float
    high: float
    grad_sq: float
    trace_sigma: float
    draws: int
    b_small: int
    b_big: int
    b_noise: float = math.nan
    b_noise_low: float = math.nan
    b_noise_high: float = math.nan
    b_simple_at_target: float = math.nan
    reason: str = ""
    trace: tuple = ()

    @classmethod
    def from_measurement(cls, m: dict) -> "NoiseResult":
        """From :func:`.sweep_noise.measure_noise`'s ``{"estimate", "trace"}`` (JSON's null
        read as NaN)."""
        e = {k: math.nan if v is None else v for k, v in m["estimate"].items()}
        return cls(batch_size=int(e["batch_size"]), lr=float(e["lr"]),
                   reached_target=bool(e.get("reached_target")), b_simple=e["b_simple"],
                   low=e["low"], high=e["high"], grad_sq=e["grad_sq"],
                   trace_sigma=e["trace"], draws=int(e["draws"]), b_small=int(e["b_small"]),
                   b_big=int(e["b_big"]), b_noise=e.get("b_noise", math.nan),
                   b_noise_low=e.get("b_noise_low", math.nan),
                   b_noise_high=e.get("b_noise_high", math.nan),
                   b_simple_at_target=e.get("hessian_b_simple", math.nan),
                   reason=str(e.get("reason") or ""),
                   trace=tuple((float(t["step"]), math.nan if t["b_simple"] is None
                                else float(t["b_simple"])) for t in m.get("trace", [])))


@dataclass(frozen=True)
class Confirmation:
    """Fresh seeds at the recommendation, timed in one window with the sweep's own seeds.

    ``times`` are the fresh seeds' times to target (``inf``: missed); ``sweep_low`` and
    ``sweep_high`` the range of the sweep's seeds at the same point *in the same timing
    window*; ``outside`` says the fresh median fell outside that range, which made the sweep
    run ``extra_seeds`` more seeds for each of ``extended`` (the tied batch sizes) and decide
    again with them (``pick_after``: the pick then).
    """

    batch_size: int
    lr: float
    seeds: tuple
    reached: int
    diverged: int
    times: tuple
    steps: tuple
    time_median: float
    steps_median: float
    sweep_low: float
    sweep_high: float
    outside: bool
    extra_seeds: tuple = ()
    extended: tuple = ()
    pick_after: int | None = None


@dataclass(frozen=True)
class SweepCost:
    """Where a sweep's wall time went: ``phases`` maps a phase (probe, pilot, search, timing,
    confirmation, noise) to wall seconds; ``train_seconds`` / ``eval_seconds`` /
    ``compile_seconds`` are the runs' own clocks summed (search, pilot and confirmation runs),
    the latter plus the probe's compilation of every batch size's program in this call;
    ``replay_seconds`` is the timed replays' training time; ``runs`` and ``replays`` count
    them."""

    wall_seconds: float
    phases: dict
    train_seconds: float
    eval_seconds: float
    compile_seconds: float
    replay_seconds: float
    runs: int
    reused: int
    replays: int
    compilations: dict

    @property
    def overhead_seconds(self) -> float:
        """Wall time that was not training: compilation, evaluation, the probe, the noise
        run, set-up between runs."""
        return max(0.0, self.wall_seconds - self.train_seconds - self.replay_seconds)


@dataclass
class SweepResult:
    """Everything a sweep found; ``to_dict()`` is what ``sweep.json`` holds (histories stay in
    ``runs/*.json``). ``sweep`` and ``base`` are the settings as dicts; ``batches`` has one
    row per batch size, ``points`` one per learning rate tried, ``runs`` one per evaluated
    run (``records`` are the runs themselves); ``warmup`` the batch-size warmup (None
    without ``batch_warmup``)."""

    sweep: dict
    base: dict
    data: str
    n_train: int
    n_validation: int
    metric: str
    target: float
    target_source: str
    records: tuple = field(repr=False, default=())
    runs: tuple = ()
    points: tuple = ()
    batches: tuple = ()
    probe: tuple = ()
    noise: NoiseResult | None = None
    recommendation: object = None
    confirmation: Confirmation | None = None
    warmup: WarmupResult | None = None
    timing_spread: float = math.nan
    timing_rounds: int = 0
    cost: SweepCost | None = None
    environment: dict = field(default_factory=dict)
    command: str | None = None

    @property
    def target_auto(self) -> bool:
        return self.sweep.get("target") is None

    def batch(self, b: int) -> BatchRow | None:
        return next((row for row in self.batches if row.batch_size == b), None)

    def histories(self, b: int, lr: float, phase: str = "search") -> list[History]:
        """The histories of the runs of one point (its seeds), in seed order."""
        return [r.history for r in sorted(self.records, key=lambda r: r.seed)
                if r.batch_size == b and r.lr == lr and r.phase == phase]

    def to_dict(self) -> dict:
        out = {}
        for f in dataclasses.fields(self):
            if f.name == "records":
                continue
            out[f.name] = _plain(getattr(self, f.name))
        return out


def _plain(v):
    """Typed records as dicts and lists, for JSON."""
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return {f.name: _plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
    if hasattr(v, "_asdict"):
        return {k: _plain(x) for k, x in v._asdict().items()}
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v


def write_tables(result: SweepResult, out) -> None:
    """``sweep.json`` (everything but histories), ``runs.csv`` (every evaluated run),
    ``points.csv`` (every learning rate tried) and ``summary.csv`` (per batch size)."""
    out = Path(out)
    write_json_atomic(out / "sweep.json", result.to_dict())
    write_text_atomic(out / "runs.csv", csv_text(result.runs, RunRow.columns()))
    write_text_atomic(out / "points.csv", csv_text(result.points, PointRow.columns()))
    write_text_atomic(out / "summary.csv", csv_text(result.batches, BatchRow.columns()))
