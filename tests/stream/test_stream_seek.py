"""ShardStream.seek: a stream positioned at (epoch, step) continues as an uninterrupted one."""

import numpy as np
import pytest
from stream_helpers import row_id_shards

from sgdlab.data.stream import ShardStream, group_loads

#: 0.002 MiB of buffer: 104 rows per load, so an epoch of 1,003 rows is 10 loads
TINY_MB = 0.002


def _stream(shards, **kw):
    kw = {"batch_size": 16, "sampling": "shuffle", "seed": 4, "buffer_mb": TINY_MB, **kw}
    return ShardStream(shards, np.arange(shards.n_blocks), **kw)


@pytest.mark.parametrize("kw", [dict(), dict(sampling="replacement"),
                                dict(sampling="sequential", drop_last=True),
                                dict(batch_size=26, rank=1, world=2)])
def test_seek_continues_exactly_as_an_uninterrupted_stream(tmp_path, kw):
    shards = row_id_shards(tmp_path)
    whole = _stream(shards, **kw)
    spe = whole.steps_per_epoch
    total = 2 * spe + 5
    ref = whole.take(total)
    whole.close()
    # step 0, inside a load, on a load boundary (13 * 8 = 104 rows), an epoch's last step,
    # and the start of the second epoch
    for g in (0, 3, 13, spe - 1, spe, spe + 7):
        s = _stream(shards, **kw)
        s.seek(g // spe, g % spe)
        got = s.take(total - g)
        s.close()
        for a, b in zip(got, ref):
            np.testing.assert_array_equal(a, b[g:])


def test_seek_skips_consumed_loads_without_reading_them(tmp_path, monkeypatch):
    shards = row_id_shards(tmp_path)
    s = _stream(shards)
    order = np.random.default_rng([s.seed, 1, 1, 0]).permutation(s.blocks)
    loads = group_loads(order, shards.block_sizes, s.load_rows)
    assert len(loads) >= 8  # several loads per epoch
    ends = np.cumsum([shards.block_sizes[g].sum() for g in loads])
    step = int(ends[5]) // 16 + 1  # inside the 7th load of epoch 1
    read = []
    original = shards.read_block
    monkeypatch.setattr(shards, "read_block", lambda b, *a: read.append(b) or original(b, *a))
    s.seek(1, step)
    s.take(1)
    s.close()
    assert read[:len(loads[6])] == list(loads[6])  # the first load read is the 7th
    assert not set(read) & set(np.concatenate(loads[:6]))


def test_seek_past_the_epoch_end_starts_the_next_epoch(tmp_path):
    shards = row_id_shards(tmp_path)
    a, b = _stream(shards), _stream(shards)
    a.seek(0, a.steps_per_epoch + 3)
    b.seek(1, 0)
    np.testing.assert_array_equal(a.take(4)[0], b.take(4)[0])
    assert a.position == b.position == {"epoch": 1, "step_in_epoch": 4}
    a.close(), b.close()
