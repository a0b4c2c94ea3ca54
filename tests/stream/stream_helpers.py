"""Helpers shared by the streaming tests: tiny CSV files and a synthetic problem."""

import numpy as np


def write_csv(path, X, y, names=None):
    names = names or [f"x{j}" for j in range(X.shape[1])]
    with open(path, "w") as f:
        f.write(",".join(names) + ",label\n")
        for row, label in zip(X, y):
            f.write(",".join(repr(float(v)) for v in row) + f",{label}\n")
    return path


def blobs(n=1003, d=6, seed=0):
    """A linearly separable-ish binary problem; n deliberately not a multiple of any batch."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    y = (X[:, 0] + 0.5 * X[:, 1] + 0.3 * rng.normal(size=n) > 0).astype(np.int64)
    return X, y


def row_id_shards(tmp_path, n=1003, block_rows=37):
    """A shard set whose only feature is the row number, to see which rows a batch holds."""
    from sgdlab.data.convert import convert
    from sgdlab.data.shards import ShardSet
    X = np.arange(n, dtype=np.float32)[:, None]
    src = write_csv(tmp_path / "ids.csv", X, np.arange(n) % 2)
    return ShardSet(convert(src, tmp_path / "ids", block_rows=block_rows))
