"""The lab: experiments that drive the engine (random search, method comparison, ...)."""
