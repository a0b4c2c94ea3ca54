"""Small shard sets written by the real converter."""

import pytest
from stream_helpers import blobs, write_csv

from sgdlab.data.convert import convert


@pytest.fixture(scope="module")
def shard_set(tmp_path_factory):
    """(shard dir, X, y) with 50-row blocks: a 1,003-row set is 21 blocks."""
    tmp = tmp_path_factory.mktemp("shards")
    X, y = blobs()
    src = write_csv(tmp / "train.csv", X, y)
    out = convert(src, tmp / "sh", block_rows=50, shard_blocks=4)
    return out, X, y
