"""Reports: plots, run directories, HTML. Nothing here does numerics."""
