"""Random search with the engine's contract: same data handling, history, timing and result.

:func:`random_search` is to :mod:`sgdlab.optim.random_search` what :func:`sgdlab.engine.train`
is to the chunk kernel: it compiles once, calls the kernel for ``K`` generations at a time, and
between calls evaluates on the whole validation set, records a history row and decides to stop.
Its :class:`~sgdlab.FitResult` reads like an SGD run's, with these meanings:

=================  ==========================================================================
step               attempts: evaluations of the objective on the whole training set
epoch              the same number (every attempt reads every training example once)
examples           attempts x N
train_seconds      time inside the compiled search calls (evaluation and compilation excluded)
train_loss         objective of the current point (best so far for global/local search)
=================  ==========================================================================
"""

from __future__ import annotations

import math
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from ..data.dataset import Dataset
from ..data.split import Standardizer
from ..engine.config import TrainConfig
from ..engine.evaluate import Validator
from ..engine import device_array, setup_run
from ..engine.history import History
from ..engine.result import FitResult
from ..errors import ConfigError
from ..losses import encode_targets, objective
from ..optim.random_search import RandomSearchConfig, make_search_chunk

#: rows a run aims for when neither the evaluation schedule nor the config fixes the call size
TARGET_ROWS = 40


def _generations_per_call(search: RandomSearchConfig, config: TrainConfig) -> int:
    if search.generations_per_call:
        return search.generations_per_call
    per = search.attempts_per_generation
    every = config.eval_schedule.every_steps
    if every:   # "N steps" means N attempts here
        return max(1, every // per)
    if search.attempts:
        return max(1, math.ceil(search.attempts / per / TARGET_ROWS))
    return 4


def random_search(train_data: Dataset, validation: Dataset | None, config: TrainConfig,
                  search: RandomSearchConfig | None = None, *, model=None, loss=None,
                  callback=None, standardizer: Standardizer | None = None) -> FitResult:
    """Minimise the training objective of ``config``'s model by random search.

    ``config`` supplies the model, loss, ``l2``, ``seed``, ``standardize``, ``max_time``,
    ``target`` (stop when the validation metric reaches it) and ``eval_every`` (its
    ``N steps`` part sets the call size, N attempts; with a ``T s`` part a row is written when T
    seconds of search time have passed; otherwise a row every call). ``search`` gives the
    mode and budget. The start point is the model's initialisation (global search replaces it
    by its first better draw). ``callback`` receives the same events as
    :func:`sgdlab.engine.train`.
    """
    wall0 = time.perf_counter()
    search = search or RandomSearchConfig()
    config.one_batch_size("random search")
    if search.attempts is None and config.max_time is None and config.target is None:
        raise ConfigError("random search has no budget: set attempts, max_time or target")
    # one step per attempt: the setup's optimiser is unused, its model and checks are the run's
    setup = setup_run(config, example_shape=train_data.X.shape[1:],
                      n_classes=train_data.n_classes, steps_per_epoch=1,
                      task=train_data.task, name=train_data.name, model=model, loss=loss)
    model_, loss_, regression = setup.model, setup.loss, setup.regression
    if config.standardize and standardizer is None:
        standardizer = Standardizer().fit(train_data.X)
    prep = (lambda X: standardizer.transform(X)) if standardizer is not None else \
        (lambda X: np.asarray(X, np.float32))
    n_classes = train_data.n_classes
    X = device_array(prep(train_data.X))
    T = device_array(np.asarray(encode_targets(loss_, train_data.y, n_classes)))
    ones = jnp.ones(train_data.n, jnp.float32)

    key_init, key_search = jax.random.split(jax.random.PRNGKey(config.seed))
    params0 = model_.init(key_init, setup.n_in, setup.n_out)
    w0, unravel = ravel_pytree(params0)

    def objective_of_flat(w, X, T):
        return objective(model_.apply, loss_, unravel(w), X, T, ones, config.l2)

    per_gen = search.attempts_per_generation
    G = _generations_per_call(search, config)
    t0 = time.perf_counter()
    kernel = make_search_chunk(objective_of_flat, search)
    run = jax.jit(lambda s, X, T, n: kernel(s, X, T, n, G)).lower(
        (key_search, w0, jnp.zeros((), w0.dtype)), X, T,
        jax.ShapeDtypeStruct((), jnp.int32)).compile()
    loss0 = float(jax.jit(objective_of_flat)(w0, X, T))
    validator = None
    if validation is not None:
        center = float(np.mean(train_data.y)) if regression else 0.0
        validator = Validator(model_, loss_, config.l2, validation.X, validation.y, n_classes,
                              params0, prep=prep, center=center)
    compile_seconds = time.perf_counter() - t0

    state = (key_search, w0, jnp.asarray(math.inf if search.mode == "global" else loss0,
                                         w0.dtype))
    history, clock = History(), {"train": 0.0, "eval": 0.0}
    metric = "val_r2" if regression else "val_accuracy"

    def add_row(attempts: int, current_loss: float) -> dict:
        t = time.perf_counter()
        params = unravel(state[1])
        row = {"step": attempts, "epoch": float(attempts), "examples": attempts * train_data.n,
               "train_seconds": clock["train"],
               "train_loss": current_loss if math.isfinite(current_loss) else loss0}
        if validator is not None:
            row.update(validator(params))
        clock["eval"] += time.perf_counter() - t
        row["eval_seconds"] = clock["eval"]
        row["wall_seconds"] = time.perf_counter() - wall0
        history.append(row)
        if callback:
            callback({"event": "row", "row": row, "params": params})
        return row

    total_gens = None if search.attempts is None else math.ceil(search.attempts / per_gen)
    if callback:
        callback({"event": "start", "steps_per_epoch": 1,
                  "total_steps": None if total_gens is None else total_gens * per_gen,
                  "chunk_steps": G * per_gen, "compile_seconds": compile_seconds,
                  "max_time": config.max_time})
    gens, status = 0, "completed"
    every_seconds = config.eval_schedule.every_seconds
    last_row_time = 0.0
    add_row(0, loss0)
    while total_gens is None or gens < total_gens:
        n = G if total_gens is None else min(G, total_gens - gens)
        t = time.perf_counter()
        state, losses = run(state, X, T, np.int32(n))
        current = float(losses[n - 1])   # waits for the call: the clock reads a finished result
        clock["train"] += time.perf_counter() - t
        gens += n
        if callback:
            callback({"event": "chunk", "step": gens * per_gen, "epoch": float(gens * per_gen),
                      "train_seconds": clock["train"],
                      "examples": gens * per_gen * train_data.n, "loss": current})
        out_of_time = config.max_time is not None and clock["train"] >= config.max_time
        at_end = out_of_time or (total_gens is not None and gens >= total_gens)
        if at_end or not every_seconds or clock["train"] - last_row_time >= every_seconds:
            row = add_row(gens * per_gen, current)
            last_row_time = clock["train"]
            if config.target is not None and row.get(metric, -math.inf) >= config.target:
                status = "target_reached"
                break
        if out_of_time:
            if total_gens is None or gens < total_gens:
                status = "max_time"
            break

    attempts = gens * per_gen
    record = config.replace(batch_size=train_data.n, epochs=None, max_steps=max(1, attempts),
                            extra={**config.extra, "method": f"random-search-{search.mode}",
                                   "random_search": search.to_dict()})
    result = FitResult(
        params=unravel(state[1]), model=model_, loss=loss_, config=record, history=history,
        status=status, task=train_data.task, classes=train_data.classes,
        standardizer=standardizer, steps=attempts, epochs=float(attempts),
        examples=attempts * train_data.n, steps_per_epoch=1, train_seconds=clock["train"],
        eval_seconds=clock["eval"], compile_seconds=compile_seconds,
        wall_seconds=time.perf_counter() - wall0,
        extra={"method": f"random-search-{search.mode}", "attempts": attempts,
               "generations_per_call": G}, n_features=train_data.d,
        example_shape=tuple(train_data.X.shape[1:]), n_outputs=setup.n_out,
        feature_names=tuple(train_data.feature_names))
    if callback:
        callback({"event": "end", "result": result})
    return result
