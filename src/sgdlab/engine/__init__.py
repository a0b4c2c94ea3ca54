"""The training engine: config, compiled chunk kernel, evaluation schedule, history, run dirs.

Its public names are imported on first use (the settings, :class:`TrainConfig`, without JAX,
so the command line builds its parser without it).
"""

from .._lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    "TrainConfig": ".config",
    "chunk_program": ".fit",
    "memory_chunk_steps": ".fit",
    "device_array": ".fit",
    "train": ".fit",
    "PlacedData": ".fit",
    "place_data": ".fit",
    "choose_chunk_steps": ".loop",
    "run_loop": ".loop",
    "History": ".history",
    "load": ".model_file",
    "Predictor": ".predictor",
    "FitResult": ".result",
    "EvalSchedule": ".schedule",
    "parse_duration": ".schedule",
    "RunSetup": ".setup",
    "resolve_model": ".setup",
    "setup_run": ".setup",
    "total_steps": ".setup",
})
