"""The lab: experiments that drive the engine. Never imports plotting or the command line.

The batch-size lab (sweeps with a learning-rate search per batch size, the throughput probe,
the gradient noise scales B_simple and B_noise, recommendations),
random search and method comparison; restarts, loss landscapes, convexity, saddle points.

Its public names are imported on first use, so reading a sweep's settings (the command line's
help) does not import JAX.
"""

from .._lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    "ConvexityReport": ".convexity",
    "probe_convexity": ".convexity",
    "Interpolation": ".interpolate",
    "interpolate": ".interpolate",
    "LandscapeResult": ".landscape",
    "run_landscape": ".landscape",
    "NoiseScales": ".hessian_noise",
    "noise_scales": ".hessian_noise",
    "Outcome": ".lr_search",
    "LrSearch": ".lr_search",
    "NoiseEstimate": ".noise",
    "NoiseScaleMeter": ".noise",
    "estimate_noise_scale": ".noise",
    "Recommendation": ".recommend",
    "recommend": ".recommend",
    "RestartReport": ".restarts",
    "run_restarts": ".restarts",
    "SaddleDemo": ".saddle",
    "saddle_demo": ".saddle",
    "Slice": ".slices",
    "path_slice": ".slices",
    "random_slice": ".slices",
    "record_paths": ".slices",
    "Problem": ".surface",
    "Surface": ".surface",
    "flatten": ".surface",
    "relative_distance": ".surface",
    "SweepConfig": ".sweep",
    "SweepResult": ".sweep",
    "run_sweep": ".sweep",
    "probe_throughput": ".throughput",
})
