"""The lab: experiments that drive the engine. Never imports plotting or the command line.

The batch-size lab (sweeps with a learning-rate search per batch size, the throughput probe,
the gradient noise scales B_simple and B_noise, recommendations),
random search and method comparison; restarts, loss landscapes, convexity, saddle points.
"""

from .convexity import ConvexityReport as ConvexityReport
from .convexity import probe_convexity as probe_convexity
from .interpolate import Interpolation as Interpolation
from .interpolate import interpolate as interpolate
from .landscape import LandscapeResult as LandscapeResult
from .landscape import run_landscape as run_landscape
from .hessian_noise import NoiseScales as NoiseScales
from .hessian_noise import noise_scales as noise_scales
from .lr_search import Outcome as Outcome
from .lr_search import LrSearch as LrSearch
from .noise import NoiseEstimate as NoiseEstimate
from .noise import NoiseScaleMeter as NoiseScaleMeter
from .noise import estimate_noise_scale as estimate_noise_scale
from .recommend import Recommendation as Recommendation
from .recommend import recommend as recommend
from .restarts import RestartReport as RestartReport
from .restarts import run_restarts as run_restarts
from .saddle import SaddleDemo as SaddleDemo
from .saddle import saddle_demo as saddle_demo
from .slices import Slice as Slice
from .slices import path_slice as path_slice
from .slices import random_slice as random_slice
from .slices import record_paths as record_paths
from .surface import Problem as Problem
from .surface import Surface as Surface
from .surface import flatten as flatten
from .surface import relative_distance as relative_distance
from .sweep import SweepConfig as SweepConfig
from .sweep import SweepResult as SweepResult
from .sweep import run_sweep as run_sweep
from .throughput import probe_throughput as probe_throughput
