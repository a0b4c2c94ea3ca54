"""ShardStream.seek: a stream positioned at (epoch, step) continues as an uninterrupted one."""

import numpy as np
import pytest
from stream_helpers import row_id_shards

from sgdlab.data.stream import ShardStream, group_loads, load_rows_for

#: 0.002 MiB of buffer = 2,097 bytes; a row is 8 bytes (one float32 feature, an int32 label)
#: and a load takes a quarter of the buffer: 65 rows per load (``load_rows_for``). Blocks are
#: 37 rows, two do not fit, so a load is one block (the last, 4-row block joins the one before
#: it in the epoch's order): an epoch of 1,003 rows is 27 loads.
TINY_MB = 0.002
LOAD_ROWS = 65


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
    # step 0, inside loads (3 and 13 steps of 16 rows: rows 48 and 208), an epoch's last step,
    # and the start of the second epoch (exact load boundaries: the test below)
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
    assert a.position == b.position == {"epoch": 1, "step_in_epoch": 4, "row": 64}
    a.close(), b.close()


def _loads(s, epoch):
    """The loads of ``epoch`` of stream ``s`` (its rank's blocks in the epoch's order, grouped
    as the stream groups them) and the row each one ends at."""
    order = s.blocks if s.sampling == "sequential" else \
        np.random.default_rng([s.seed, epoch, 1, s.rank]).permutation(s.blocks)
    loads = group_loads(order, s.shards.block_sizes, s.load_rows)
    return loads, np.cumsum([s.shards.block_sizes[g].sum() for g in loads])


@pytest.mark.parametrize("kw", [dict(), dict(sampling="replacement"),
                                dict(sampling="sequential", drop_last=True),
                                dict(batch_size=20, rank=1, world=2)])
def test_seek_exactly_at_a_load_boundary(tmp_path, monkeypatch, kw):
    """A seek whose consumed rows end exactly where a load ends: that load and all before it
    are skipped unread, the next one is read whole, and the batches equal an unseeked
    stream's from that step on (in the first epoch and in the second)."""
    kw = {"batch_size": 10, **kw}
    shards = row_id_shards(tmp_path)
    whole = _stream(shards, **kw)
    assert whole.load_rows == load_rows_for(shards, TINY_MB) == LOAD_ROWS
    spe, bl = whole.steps_per_epoch, whole.local_batch
    total = 2 * spe
    ref = whole.take(total)
    whole.close()
    seeks = []
    for epoch in (0, 1):
        loads, ends = _loads(whole, epoch)
        assert len(loads) >= 10 and max(len(g) for g in loads) <= 2
        # steps whose consumed rows end a load (the epoch's last load aside)
        hits = [(int(e) // bl, j) for j, e in enumerate(ends[:-1]) if e % bl == 0]
        assert hits, (epoch, ends)
        seeks += [(epoch, step, loads, j) for step, j in hits[:2]]
    assert {e for e, *_ in seeks} == {0, 1}
    for epoch, step, loads, j in seeks:
        s = _stream(shards, **kw)
        read = []
        original = shards.read_block
        monkeypatch.setattr(shards, "read_block",
                            lambda b, *a, read=read, original=original:
                            read.append(b) or original(b, *a))
        s.seek(epoch, step)
        got = s.take(total - epoch * spe - step)
        s.close()
        monkeypatch.setattr(shards, "read_block", original)
        g = epoch * spe + step
        for a, b in zip(got, ref):
            np.testing.assert_array_equal(a, b[g:], err_msg=f"seek to ({epoch}, {step})")
        # the first load read is the one after the boundary, whole: nothing before it is read
        assert read[:len(loads[j + 1])] == list(loads[j + 1]), (epoch, step, read[:4])
        assert not set(read[:sum(len(x) for x in loads[j + 1:])]) & \
            set(np.concatenate(loads[:j + 1]).tolist())
