"""The lab: experiments that drive the engine.

The batch-size lab (sweeps, the throughput probe, the gradient noise scale, recommendations),
random search and method comparison. Never imports plotting or the command line.
"""

from .noise import NoiseEstimate as NoiseEstimate
from .noise import NoiseScaleMeter as NoiseScaleMeter
from .noise import estimate_noise_scale as estimate_noise_scale
from .recommend import Recommendation as Recommendation
from .recommend import recommend as recommend
from .sweep import SweepConfig as SweepConfig
from .sweep import SweepResult as SweepResult
from .sweep import run_sweep as run_sweep
from .throughput import probe_throughput as probe_throughput
