"""The batch-size sweep: which batch size (and learning rate) reaches the target fastest here.

The recipe of the source text, made measurable and fair: fix the other hyperparameters, train
with several batch sizes, each **at its own best learning rate** (Shallue et al. 2018: no
scaling rule holds everywhere), compare them by *training time* to a target validation value
(not epochs) and pick the batch size that gets there soonest.

1. **Probe** (:mod:`.throughput`): each batch size's training program is compiled once and its
   cost per step and per compiled call measured. The learning rate and the seed are runtime
   inputs of the program, so this one program serves every run of that batch size.
2. **Target**: given, or chosen by a *pilot*: the first learning rates of the batch size
   nearest the base batch train for the budget (:data:`PILOT_EPOCHS` epochs without one), and
   the target is 0.99 x the best final validation value, floored to 0.01. A given target gets
   the same pilot runs, stopped at it: only their steps to it are kept, which set how often
   the search's first runs evaluate (else every :data:`EVAL_FRACTION` of an epoch).
3. **Search** (:mod:`.search_rounds`, :mod:`.lr_search`): per batch size a learning-rate
   search on a log grid, bracketed and refined down to :data:`~.lr_search.RESOLUTION`
   (finer than a factor-sqrt(2) grid), ranked by median *steps* to the target over the seeds
   (exact); the searches of every batch size run together in rounds, and each run is capped
   in steps (:mod:`.caps`): a run that can no longer beat its batch size's best learning rate,
   or a batch size that is more than :data:`~.caps.BEHIND` times slower than the best one so
   far, stops early. Runs evaluate about :data:`EVALS_PER_RUN` times up to the steps their
   batch size is expected to need (:func:`eval_schedule_for`), always at steps fixed before
   the run, so steps to target are deterministic.
4. **Timing** (:mod:`.timing`): each seed's run at its batch size's kept learning rate is
   replayed for exactly its steps to the target, with no evaluation in between, in rounds of
   random order: a time to target per seed that counts training only, in as few compiled
   calls as the program allows, measured in one window for every batch size.
5. **Decision** (:mod:`.ties`, :mod:`.recommend`): the fastest median, the batch sizes tied
   with it, the stated rule among them; a **confirmation** with fresh seeds timed beside the
   sweep's own seeds, and more seeds for the tied batch sizes when it falls outside their
   range (:mod:`.confirm`); the gradient noise scales (:mod:`.sweep_noise`).
6. **Batch-size warmup** (``batch_warmup``; :mod:`.sweep_warmup`): the critical batch size
   measured over training by branching, a warmup schedule built from it, timed against the
   pick; recommended instead only when faster beyond the noise.

With an ``executor`` (:mod:`.runbook`; :class:`~.ray_executor.RayExecutor`) the runs of each
``run_all`` are made concurrently on its workers, and the probe, the replays and the noise run
on its one timing worker, while nothing else of the sweep runs: the same records, the times
of one device. Without one, and with the probe, they are made one thread per usable CPU of
this process (:class:`~.runbook.ThreadWorkers`), and the noise run's programs compile in a
thread while the searches run; the probe, the replays and the noise run still run alone.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Callable

from ..data.dataset import Dataset
from ..data.sampling import steps_per_epoch
from ..data.split import split
from ..engine import cache
from ..engine.config import TrainConfig
from ..engine.loop import CHUNK_EXAMPLES, MAX_CHUNK_STEPS
from ..engine.rundir import environment, prepare_dir
from ..errors import ConfigError
from .caps import StepCost, monotone_costs, parse_budget
from .sweep_config import EVAL_FRACTION, EVALS_PER_RUN, PILOT_EPOCHS, SweepConfig
from .sweep_warmup import check_warmup, measure_warmup
from .confirm import confirm_pick, confirmation_sentence
from .lr_search import FixedPoints, LrSearch
from .measure import final_metric, metric_name, steps_to_target, target_from
from .next_run import recommended_command
from .recommend import recommend
from .records import RunRecord, data_fingerprint, stored_result
from .runbook import RunBook, RunRequest
from .search_rounds import SearchRounds, rescore
from .summary import NoiseResult, ProbeRow, SweepCost, SweepResult, write_tables
from .sweep_noise import lower_noise_programs
from .tables import batch_rows, point_rows, run_rows
from .ties import decide
from .throughput import usable_cpus
from .timing import Replay, ReplayTimes, planned, time_replays



def default_batch_sizes(n: int, largest: int = 1024) -> tuple:
    """Powers of two from 1 up to ``min(largest, n)``: ``(1, 2, 4, ..., 1024)``."""
    top = min(largest, n)
    return tuple(2 ** i for i in range(int(math.log2(top)) + 1))


def chunk_steps_for(batch_size: int) -> int:
    """Steps per compiled call of every run of ``batch_size`` in a sweep: the length an
    uninterrupted run would use (:data:`~sgdlab.engine.loop.CHUNK_EXAMPLES` examples, at most
    :data:`~sgdlab.engine.loop.MAX_CHUNK_STEPS`). Evaluated runs stop each call early (the
    kernel runs only its active steps), replays fill it: one program serves both."""
    return cache.bucket_steps(min(MAX_CHUNK_STEPS, math.ceil(CHUNK_EXAMPLES / batch_size)))


def eval_schedule_for(sweep: SweepConfig, n: int, batch_size: int, drop_last: bool,
                      expected_steps: float | None = None) -> str:
    """Per-run evaluation schedule: ``--eval-every``; else every ``expected_steps /``
    :data:`EVALS_PER_RUN` steps when the steps to the target can be expected (from the batch
    size's best learning rate so far, or another batch size's), else every
    :data:`EVAL_FRACTION` of an epoch; at least every step."""
    if sweep.eval_every:
        return sweep.eval_every
    if expected_steps is not None and math.isfinite(expected_steps):
        return f"{max(1, int(expected_steps // EVALS_PER_RUN))} steps"
    spe = steps_per_epoch(n, batch_size, drop_last)
    return f"{max(1, round(EVAL_FRACTION * spe))} steps"


def batch_sizes_for(sweep: SweepConfig, n_train: int) -> tuple:
    """The swept batch sizes, checked against the number of training examples."""
    sizes = sweep.batch_sizes or default_batch_sizes(n_train)
    too_big = [b for b in sizes if b > n_train]
    if too_big:
        raise ConfigError(f"batch sizes {too_big} exceed the number of training examples "
                          f"({n_train}); remove them from --batch-sizes or use more data")
    return tuple(sizes)


def run_config(sweep: SweepConfig, base: TrainConfig, n_train: int, batch_size: int,
               lr: float, seed: int, target: float | None, max_steps: int | None,
               expected_steps: float | None = None) -> TrainConfig:
    """One run: ``base`` with this batch size, lr, seed, target and step cap, evaluated on the
    sweep's schedule (:func:`eval_schedule_for`), in calls of :func:`chunk_steps_for` steps."""
    return base.replace(batch_size=batch_size, lr=lr, seed=seed, target=target,
                        epochs=None, max_time=None, max_steps=max_steps,
                        eval_every=eval_schedule_for(sweep, n_train, batch_size,
                                                     base.drop_last, expected_steps),
                        chunk_steps=chunk_steps_for(batch_size))


def run_threads(sweep: SweepConfig) -> int:
    """Runs a sweep makes at once in this process (:class:`~.runbook.ThreadWorkers`): one per
    usable CPU when the training runs on the CPU and nothing reads the runs' clocks (with the
    probe, the caps count steps at its costs, and every compared time is a replay, made
    alone); else one (an accelerator's memory would hold every concurrent run's state)."""
    import jax
    return usable_cpus() if sweep.probe and jax.default_backend() == "cpu" else 1


def nearest_to_base(sizes, base_batch: int) -> int:
    """The batch size nearest (in ratio) to the base batch; the smaller one on a tie."""
    return min(sizes, key=lambda s: (abs(math.log(s / base_batch)), s))


Callback = Callable[[dict], None]


class _Clock:
    """Wall seconds per phase of a sweep."""

    def __init__(self):
        self.t0 = self.mark = time.perf_counter()
        self.phases: dict = {}

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.phases[name] = self.phases.get(name, 0.0) + now - self.mark
        self.mark = now


def run_sweep(data: Dataset, sweep: SweepConfig | None = None, base: TrainConfig | None = None,
              *, validation: Dataset | None = None, out: str | Path | None = None,
              callback: Callback | None = None, model=None, loss=None,
              data_command: tuple | None = None, executor=None) -> SweepResult:
    """Run (or resume) a sweep and summarise it; see the module docstring.

    ``base`` holds everything not swept (model, optimiser, sampling, L2, ...). Without
    ``validation`` the data is split by ``base.validation_fraction`` and ``base.seed``; every
    run sees the same split. With ``out``, each finished run is stored under ``out/runs/`` and
    reused by a later call with the same settings and data (the probe and the noise run too),
    and ``sweep.json``, ``runs.csv``, ``points.csv`` and ``summary.csv`` are written (plots and
    the HTML report: :mod:`sgdlab.report.sweep`). ``callback`` receives progress events:
    ``plan``, ``replan``, ``run_start``, ``run_end``, ``phase``, ``probe``, ``replay``.
    ``data_command``: how the recommended ``sgdlab train`` command names the data (default
    ``("--data", data.name)``). Resuming compares settings and data, not code: after passing
    a different custom ``model``/``loss`` object, use a new ``out``. ``executor``: where the
    runs are made (see the module docstring); None: here, one after another.
    """
    sweep = sweep or SweepConfig()
    base = base or TrainConfig()
    base.one_batch_size("sgdlab sweep")
    clock = _Clock()
    built0 = cache.stats()["built"]
    if validation is None:
        parts = split(data, validation=base.validation_fraction, test=base.test_fraction,
                      seed=base.seed)
        train_part, validation = parts.train, parts.validation
    else:
        train_part = data
    if validation is None:
        raise ConfigError("a sweep needs validation data to measure time to target; set "
                          "--validation-fraction above 0 (e.g. 0.2)")
    n = train_part.n
    sizes = batch_sizes_for(sweep, n)
    if sweep.batch_warmup:
        check_warmup(sizes, base, executor)
    if out:
        prepare_dir(out)
    emit = callback or (lambda event: None)
    seeds = [base.seed + s for s in range(sweep.seeds)]
    per_lr = {"search": 8, "grid": len(sweep.lr_grid or ()), "rule": 1}[sweep.lr_mode]
    runs_guess = len(sizes) * per_lr * sweep.seeds + (sweep.seeds if sweep.confirm else 0)
    extra = (len(sizes) if sweep.probe else 0) + (1 if sweep.noise else 0)
    emit({"event": "plan", "runs": runs_guess, "extra": extra})
    fingerprint = data_fingerprint(train_part, validation)
    book = RunBook(train_part, validation, fingerprint=fingerprint, out=out, emit=emit,
                   model=model, loss=loss, executor=executor, threads=run_threads(sweep))
    spe = {b: steps_per_epoch(n, b, base.drop_last) for b in sizes}
    budget = parse_budget(sweep.budget)

    def config_for(b, lr, seed, max_steps, target=None, expected=None):
        return run_config(sweep, base, n, b, lr, seed, target, max_steps, expected)

    # 1. the probe: every batch size's program compiled, a step's cost measured
    probe: tuple = ()
    costs: dict = {}
    probe_compile = 0.0  # compiling (or loading) the programs in the probe, this call
    if sweep.probe:
        emit({"event": "phase", "name": "throughput probe"})
        probe, probe_compile = measure_probe(book, [config_for(b, sweep.lr_for(b), base.seed, 1)
                                                    for b in sizes], emit)
        costs = monotone_costs({p.batch_size: StepCost(p.batch_size, p.step_seconds,
                                                       p.call_seconds, p.chunk_steps)
                                for p in probe if p.step_seconds > 0})
    clock.lap("probe")

    # 2. the target
    first = nearest_to_base(sizes, sweep.base_batch)
    target, source = sweep.target, "given"
    known_steps: dict = {}  # steps to the target known before the search: the pilot's
    if sweep.stop_at_target and not (target is not None and sweep.eval_every):
        emit({"event": "phase", "name": "pilot"})
        book.expect(runs_guess + 3, extra)
        pilot = pilot_runs(book, sweep, first, spe[first], budget, costs.get(first),
                           config_for, base.seed, target)
        if target is None:
            target, source = pilot_target(pilot, sweep, first, book.validation)
        pilot_steps = min((steps_to_target(r.history, target) for r in pilot
                           if r.status != "diverged"), default=math.inf)
        if math.isfinite(pilot_steps):
            known_steps[first] = pilot_steps
    stop = target if sweep.stop_at_target else None
    clock.lap("pilot")

    # 3. the learning-rate searches of every batch size, in rounds
    emit({"event": "phase", "name": "learning-rate search"})
    # The noise run's other programs compile meanwhile (its shapes are known; the searches'
    # runs are not timed); here only: an executor makes the noise run on its timing worker.
    noise_programs = None
    if sweep.noise and executor is None:
        noise_programs = compile_in_background(lower_noise_programs(
            train_part, config_for(first, sweep.lr_for(first), base.seed, 1), sorted(sizes),
            sweep.noise_batches, sweep.noise_draws, model=model, loss=loss))

    def make_search(b):
        lr0 = sweep.lr_for(b)
        if sweep.lr_mode == "search":
            return LrSearch(lr0, sweep.search_factor, sweep.lr_resolution,
                            sweep.search_points)
        mults = sweep.lr_grid or (1.0,)
        return FixedPoints(lr0, sweep.search_factor, xs=tuple(
            math.log(m) / math.log(sweep.search_factor) for m in mults))

    rounds = SearchRounds(book, sizes, seeds=seeds, target=stop,
                          config_for=lambda b, lr, s, cap, expected: config_for(
                              b, lr, s, cap, stop, expected),
                          make_search=make_search, costs=costs, budget=budget,
                          steps_per_epoch=spe, first_batch=first,
                          lr_multiplier=lambda b, lr: lr / sweep.lr_for(b),
                          known_steps=known_steps)
    left = lambda: sum(0 if s.done else 3 * sweep.seeds  # noqa: E731 (a guess per search)
                       for s in rounds.searches.values())
    searches = rounds.run(on_round=lambda r: book.expect(left() + (
        sweep.seeds if sweep.confirm else 0), extra))
    if noise_programs is not None:  # compiled before anything is timed
        noise_programs = noise_programs.result()
    clock.lap("search")
    metric = metric_name(book.records[0].history) if book.records else "val_accuracy"
    if stop is None:  # --full-budget: the target is read from the runs, then applied to them
        if target is None:
            target = auto_target([r for r in book.records if r.phase == "search"], metric)
            source = "0.99 x the best median final value of the runs, floored to 0.01"
        rescore(searches, book.records, target)

    # 4. timing: replays of each batch size's kept point, interleaved
    search_records = [r for r in book.records if r.phase == "search"]
    runs = run_rows(search_records, target, metric)
    run_of: dict = {}
    for rec, row in zip(search_records, runs):
        run_of.setdefault((rec.batch_size, rec.x), []).append(row)
    points = point_rows(searches, costs, run_of)
    replay = Replayer(book, config_for)
    chosen = [p for p in points if p.chosen and math.isfinite(p.steps_median)]
    to_time = [Replay(p.batch_size, p.lr, r.seed, int(r.steps_to_target)) for p in chosen
               for r in run_of[(p.batch_size, p.x)] if r.reached]
    emit({"event": "phase", "name": "timing"})
    emit({"event": "replan", "runs": len(book.records), "extra": planned(to_time,
                                                                         sweep.timing_rounds)})
    timed = time_replays(to_time, replay, rounds=sweep.timing_rounds, seed=base.seed,
                         progress=lambda: emit({"event": "replay"}))
    clock.lap("timing")
    batches = batch_rows(points, runs, timed, costs, searches)
    decision = decide({r.batch_size: r.seed_times for r in batches},
                      {r.batch_size: r.steps_median for r in batches},
                      {r.batch_size: r.every_seed_reached for r in batches})

    # 5. confirmation with fresh seeds (and more seeds for a tie it contradicts)
    confirmation = None
    if sweep.confirm and decision.pick is not None:
        emit({"event": "phase", "name": "confirmation"})
        confirmation, batches, decision, timed_more = confirm_pick(
            book, batches, decision, seeds=seeds, target=stop, metric=metric,
            config_for=config_for, costs=costs, budget=budget, spe=spe, replay=replay,
            rounds=sweep.timing_rounds, order_seed=base.seed,
            rebuild=lambda extra, window: batch_rows(points, runs, _merge_times(timed, window),
                                                     costs, searches, extra), emit=emit)
        if timed_more is not None:
            timed = _merge_times(timed, timed_more)
    clock.lap("confirmation")

    # 6. the noise scales, at the swept batch size nearest the base batch
    noise = None
    if sweep.noise and batches:
        emit({"event": "phase", "name": "gradient noise scale"})
        b = nearest_to_base([r.batch_size for r in batches], sweep.base_batch)
        row = next(r for r in batches if r.batch_size == b)
        cfg = config_for(b, row.lr, base.seed, math.ceil(PILOT_EPOCHS * spe[b]),
                         target if math.isfinite(target) else None, row.steps_median)
        noise = measure_noise_result(book, cfg, sizes, sweep, noise_programs)
        emit({"event": "probe", "name": "noise"})
    clock.lap("noise")

    rec = recommend(batches, target=target, metric=metric, noise=noise, seeds=sweep.seeds,
                    budget=sweep.budget, decision=decision)
    if confirmation is not None:
        rec = rec.with_sentence(confirmation_sentence(confirmation))
    command = recommended_command(base, rec.batch_size, rec.lr,
                                  *_data_command(data, data_command))
    # 7. the critical batch size over training, and a warmup schedule built from it
    warmup = None
    if sweep.batch_warmup:
        emit({"event": "phase", "name": "batch-size warmup"})
        emit({"event": "replan", "runs": len(book.records), "extra": sweep.seeds * (
            2 + 5 * len(sizes) + 4 * sweep.timing_rounds)})
        warmup = measure_warmup(
            book, batches=batches, pick=rec.batch_size, seeds=seeds, sizes=sizes,
            target=target, metric=metric, rule=sweep.lr_scaling, config_for=config_for,
            replay=replay, rounds=sweep.timing_rounds, order_seed=base.seed + 2, base=base,
            noise=noise, scaling=rec.scaling, sweep_seconds=time.perf_counter() - clock.t0,
            data_arg=_data_command(data, data_command)[0],
            extra=_data_command(data, data_command)[1],
            progress=lambda: emit({"event": "replay"}))
        for sentence in (warmup.agreement, *warmup.sentences):
            if sentence:
                rec = rec.with_sentence(sentence)
        command = warmup.command or command
    clock.lap("batch-size warmup")
    replay_times = {(r.batch_size, r.lr, r.seed): timed.time(i)
                    for i, r in enumerate(timed.replays)}
    all_runs = run_rows(book.records, target, metric, replay_times)
    clock.lap("tables")
    cost = sweep_cost(book.records, timed, clock, built0, book.reused, probe_compile)
    result = SweepResult(
        sweep=sweep.to_dict(), base=base.to_dict(), data=train_part.name, n_train=n,
        n_validation=validation.n, metric=metric, target=target, target_source=source,
        records=tuple(book.records), runs=tuple(all_runs), points=tuple(points),
        batches=tuple(batches), probe=probe, noise=noise, recommendation=rec,
        confirmation=confirmation, warmup=warmup, timing_spread=timed.spread(),
        timing_rounds=timed.rounds, cost=cost, environment=environment(), command=command)
    book.close()
    if out:
        write_tables(result, out)
    return result


def _data_command(data: Dataset, data_command: tuple | None) -> tuple:
    """``(data_arg, extra flags)`` for :func:`~.next_run.recommended_command`."""
    if data_command:
        return str(data_command[1]), tuple(data_command[2:])
    return data.name, ()


def _merge_times(a: ReplayTimes, b: ReplayTimes) -> ReplayTimes:
    """``a`` with the replays ``b`` measured again (or newly) replacing or joining them."""
    index = {r: i for i, r in enumerate(b.replays)}
    replays, seconds, calls = [], [], []
    for i, r in enumerate(a.replays):
        j = index.pop(r, None)
        replays.append(r)
        seconds.append(b.seconds[j] if j is not None else a.seconds[i])
        calls.append(b.calls[j] if j is not None else a.calls[i])
    for r, j in index.items():
        replays.append(r)
        seconds.append(b.seconds[j])
        calls.append(b.calls[j])
    return ReplayTimes(tuple(replays), tuple(seconds), tuple(calls), max(a.rounds, b.rounds))


class Replayer:
    """``replay(Replay) -> (training seconds, compiled calls)``: the run of that batch size,
    learning rate and seed trained for exactly its steps with no evaluation in between
    (through ``book``, which holds the data prepared on the device: :meth:`RunBook.timed`)."""

    def __init__(self, book: RunBook, config_for):
        self.book, self.config_for = book, config_for

    def __call__(self, r: Replay) -> tuple:
        cfg = self.config_for(r.batch_size, r.lr, r.seed, r.steps).replace(eval_every="end")
        status, steps, seconds = self.book.timed(replay_on, cfg)
        if status != "completed" or steps != r.steps:
            return math.inf, 0
        return seconds, math.ceil(r.steps / cfg.chunk_steps)


def replay_on(book: RunBook, cfg: TrainConfig, progress=None) -> tuple:
    """``(status, steps, training seconds)`` of one run of ``cfg`` on ``book``'s data."""
    result = book.train(cfg)
    return result.status, result.steps, result.train_seconds


def probe_on(book: RunBook, configs: list, progress=None) -> list:
    """:func:`.throughput.probe_throughput` of ``configs`` on ``book``'s data."""
    from .throughput import probe_throughput
    return probe_throughput(book.train_part, configs, model=book.model, loss=book.loss,
                            progress=progress)


def measure_probe(book: RunBook, configs: list, emit) -> tuple:
    """The throughput probe of every configuration (one per batch size), stored in
    ``out/throughput.json`` and reused while the data, configurations and device kind are
    the same: ``-> (rows, seconds this call spent compiling the programs)`` (0 when reused:
    the runs then compile them, on their own clocks)."""
    done = []

    def progress(event):
        done.append(event)
        emit(event)

    key = {"data": book.fingerprint, "configs": [c.to_dict() for c in configs],
           "device": book.device}
    rows = stored_result(book.out, "throughput.json", key,
                         lambda: book.timed(probe_on, configs, progress=progress),
                         lambda value: tuple(ProbeRow.from_dict(r) for r in value))
    if len(done) < len(configs):
        emit({"event": "probe", "count": len(configs) - len(done)})
    return rows, (sum(r.compile_seconds for r in rows) if done else 0.0)


def noise_on(book: RunBook, cfg: TrainConfig, sizes: list, batches, draws: int,
             programs=None, progress=None):
    """:func:`.sweep_noise.measure_noise` of ``cfg`` on ``book``'s data (``programs``:
    compiled ahead, in this process)."""
    from .sweep_noise import measure_noise
    return measure_noise(book.train_part, book.validation, cfg, sizes, batches, draws,
                         model=book.model, loss=book.loss, programs=programs)


def measure_noise_result(book: RunBook, cfg: TrainConfig, sizes, sweep: SweepConfig,
                         programs=None) -> NoiseResult:
    """The noise run (:func:`.sweep_noise.measure_noise`), stored in ``out/noise.json``;
    ``programs``: its :class:`~.sweep_noise.NoisePrograms`, compiled ahead."""
    key = {"data": book.fingerprint, "config": cfg.to_dict(), "sweep": sweep.to_dict()}
    return stored_result(book.out, "noise.json", key, lambda: book.timed(
        noise_on, cfg, sorted(sizes), sweep.noise_batches, sweep.noise_draws, programs),
        NoiseResult.from_measurement)


def compile_in_background(lowered: list):
    """A future of :func:`.sweep_noise.compile_noise_programs` of ``lowered``, compiled in a
    thread of its own (compiling releases the interpreter lock)."""
    from concurrent.futures import ThreadPoolExecutor
    from .sweep_noise import compile_noise_programs
    pool = ThreadPoolExecutor(max_workers=1)
    future = pool.submit(compile_noise_programs, lowered)
    pool.shutdown(wait=False)  # the thread ends with its one task
    return future


def sweep_cost(records: list[RunRecord], timed: ReplayTimes, clock: _Clock, built0: dict,
               reused: int, probe_compile: float = 0.0) -> SweepCost:
    """The cost of this call; ``probe_compile``: the probe's compilation, which the runs'
    own clocks do not hold (it compiled the programs they then used)."""
    def total(key):
        return sum(float(r.summary.get(key) or 0.0) for r in records
                   if math.isfinite(float(r.summary.get(key) or 0.0)))
    replay_seconds = sum(sum(t for t in s if math.isfinite(t)) for s in timed.seconds)
    return SweepCost(
        wall_seconds=time.perf_counter() - clock.t0, phases=dict(clock.phases),
        train_seconds=total("train_seconds"), eval_seconds=total("eval_seconds"),
        compile_seconds=total("compile_seconds") + probe_compile,
        replay_seconds=replay_seconds,
        runs=len(records), reused=reused, replays=sum(len(s) for s in timed.seconds),
        compilations={kind: k - built0.get(kind, 0)
                      for kind, k in cache.stats()["built"].items()})


def auto_target(records: list[RunRecord], metric: str) -> float:
    """0.99 x the best median final metric over (batch size, lr) points, floored to 0.01."""
    from .measure import median
    groups: dict = {}
    for r in records:
        v = final_metric(r.history, metric)
        if r.status != "diverged" and not math.isnan(v):
            groups.setdefault((r.batch_size, r.lr), []).append(v)
    if not groups:
        return math.nan
    return target_from(max(median(v) for v in groups.values()))


def pilot_runs(book: RunBook, sweep: SweepConfig, b: int, spe: int, budget: dict,
               cost: StepCost | None, config_for, seed: int, target: float | None) -> list:
    """The pilot: the first learning rates of batch size ``b`` (nearest the base batch), one
    seed each, for the budget, stopped at ``target`` when one is given; ``-> their records``.

    The runs evaluate :data:`EVALS_PER_RUN` times over their length: a chosen target needs
    only their last values, and the steps to reach it (which set how often the search's first
    runs evaluate) need no finer grid.
    """
    from .caps import budget_steps
    steps = budget_steps(budget, spe, cost) or math.ceil(PILOT_EPOCHS * spe)
    requests = [RunRequest(config_for(b, sweep.lr_for(b, m), seed, steps, target,
                                      expected=steps), "pilot", m)
                for m in pilot_multipliers(sweep)]
    return book.run_all(requests)


def pilot_multipliers(sweep: SweepConfig) -> tuple:
    """The pilot's learning rates, as multiples of the batch size's first one."""
    return {"search": (1.0, sweep.search_factor, 1 / sweep.search_factor),
            "grid": sweep.lr_grid, "rule": (1.0,)}[sweep.lr_mode]


def pilot_target(records: list, sweep: SweepConfig, b: int,
                 validation: Dataset) -> tuple[float, str]:
    """The target chosen from the pilot's ``records`` (:func:`pilot_runs` without a target);
    ``-> (target, sentence saying how it was chosen)``.

    The target is 0.99 x the best final validation value, floored to 0.01 (R^2 may be
    negative: then the value itself). A pilot that learned nothing (no final value above the
    value before training) is an error: its target would be met before any step. When the
    target is no better than always guessing the most frequent class, the sentence says so.
    """
    what = sweep.budget or f"{PILOT_EPOCHS} epochs"
    finals, start = {}, -math.inf
    for rec in records:
        v = final_metric(rec.history)
        start = max(start, final_metric(rec.history[:1]))
        if rec.status != "diverged" and math.isfinite(v):
            finals[rec.lr] = v
    lrs = ", ".join(f"{sweep.lr_for(b, m):.3g}" for m in pilot_multipliers(sweep))
    if not finals:
        raise ConfigError(f"every pilot run at batch size {b} diverged (learning rates {lrs}), "
                          "so no target could be chosen; lower --lr or give --target-accuracy")
    lr, best = max(finals.items(), key=lambda kv: kv[1])
    target = target_from(best)
    if not target > start:
        raise ConfigError(f"the pilot at batch size {b} (learning rates {lrs}) learned nothing "
                          f"within {what}: its best validation value, {best:.4g}, gives a "
                          f"target no better than before training ({start:.4g}); raise --lr "
                          "or --budget, or give --target-accuracy")
    text = (f"0.99 x the best final value ({best:.4g}, at batch size {b} and learning rate "
            f"{lr:.3g} after {what}), floored to 0.01")
    guess = majority_rate(validation)
    if guess is not None and target <= guess:
        text += (f"; note that always guessing the most frequent class scores {guess:.3g} on "
                 "the validation set, so this target says little: give a higher "
                 "--target-accuracy")
    return target, text


def majority_rate(data: Dataset) -> float | None:
    """Accuracy of always predicting the most frequent class (None for regression)."""
    import numpy as np
    if data.task != "classification" or not len(data.y):
        return None
    _, counts = np.unique(np.asarray(data.y), return_counts=True)
    return float(counts.max() / counts.sum())
