"""What one gradient-descent run trains on, as a value: the recovery loop runs it again.

:func:`sgdlab.fit` prepares the data and the run directory, then hands a :class:`Job` down:
``RunDirectory.run(job, config)`` -> :func:`sgdlab.engine.resume.train_with_recovery` ->
:func:`train_job` -> the engine's training function for the job's data (in memory, streamed
from shards, or over several devices or processes). Every call goes down the layers; a
divergence retry calls :func:`train_job` again with a lower learning rate.
"""

from __future__ import annotations

from dataclasses import dataclass

from .config import TrainConfig
from .result import FitResult


@dataclass(frozen=True)
class Job:
    """The inputs of a run besides its configuration.

    ``train``: a :class:`~sgdlab.data.Dataset` held in memory, or the
    :class:`~sgdlab.data.shards.ShardSet` of a streamed run (``streamed``); ``validation``
    likewise (or None: held out by the configuration). ``model``/``loss``: user objects
    instead of the configuration's names. ``placement``: devices or processes of a
    data-parallel run. ``init_params``/``standardizer``: the initial model of a fine-tuning
    run; ``sample_weight``: ``(N,)`` weights of the training rows; ``session``: the
    checkpoint :class:`~sgdlab.engine.session.Session` the loop writes through.
    """

    train: object
    validation: object = None
    streamed: bool = False
    model: object = None
    loss: object = None
    callback: object = None
    placement: object = None
    init_params: object = None
    standardizer: object = None
    sample_weight: object = None
    session: object = None


def train_job(job: Job, config: TrainConfig) -> FitResult:
    """Train ``config`` on ``job``'s data by the engine's function for it."""
    if job.streamed:
        from .stream_fit import train_shards
        return train_shards(job.train, config, validation=job.validation, model=job.model,
                            loss=job.loss, callback=job.callback, placement=job.placement,
                            session=job.session)
    if job.placement is not None:
        from .stream_fit import train_parallel
        return train_parallel(job.train, job.validation, config, placement=job.placement,
                              model=job.model, loss=job.loss, callback=job.callback,
                              session=job.session)
    from .fit import train
    return train(job.train, job.validation, config, model=job.model, loss=job.loss,
                 callback=job.callback, session=job.session, init_params=job.init_params,
                 standardizer=job.standardizer, sample_weight=job.sample_weight)
