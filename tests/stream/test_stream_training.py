"""Streaming from shards: exactly-once epochs, in-memory accuracy, identical sequential runs."""

import numpy as np
import pytest

import sgdlab
from stream_helpers import row_id_shards, write_csv
from sgdlab import TrainConfig
from sgdlab.data import from_arrays
from sgdlab.data.shards import ShardSet
from sgdlab.data.stream import ShardStream, load_rows_for
from sgdlab.engine import train
from sgdlab.errors import ConfigError

#: 0.01 MiB of buffer = 93 rows of 6 features per load, under 10% of the 1,003 rows
TINY_MB = 0.01


@pytest.mark.parametrize("batch", [1, 32, 1003])
def test_shuffle_visits_every_example_exactly_once_per_epoch(tmp_path, batch):
    shards = row_id_shards(tmp_path)
    stream = ShardStream(shards, np.arange(shards.n_blocks), batch, "shuffle", seed=3,
                         buffer_mb=0.002)
    assert stream.load_rows < shards.n / 4  # the buffer is far smaller than the data
    orders = []
    for _epoch in range(2):
        X, y, w, count = stream.take(stream.steps_per_epoch)
        ids = X[..., 0][w > 0]
        assert len(ids) == shards.n == int(count.sum())
        np.testing.assert_array_equal(np.sort(ids), np.arange(shards.n))
        orders.append(ids)
    stream.close()
    if batch < shards.n:
        assert not np.array_equal(orders[0], orders[1])  # a fresh order every epoch
        assert not np.array_equal(orders[0], np.arange(shards.n))
    assert stream.position == {"epoch": 2, "step_in_epoch": 0, "row": 0}


def test_take_across_calls_equals_one_take(tmp_path):
    shards = row_id_shards(tmp_path)
    a = ShardStream(shards, np.arange(shards.n_blocks), 10, "shuffle", seed=1, buffer_mb=0.002)
    b = ShardStream(shards, np.arange(shards.n_blocks), 10, "shuffle", seed=1, buffer_mb=0.002)
    whole = a.take(250)[0]
    parts = np.concatenate([b.take(7)[0] for _ in range(35)] + [b.take(5)[0]])
    np.testing.assert_array_equal(whole, parts)
    a.close(), b.close()


def test_replacement_and_drop_last_accounting(tmp_path):
    shards = row_id_shards(tmp_path)
    rep = ShardStream(shards, np.arange(shards.n_blocks), 100, "replacement", buffer_mb=0.002)
    X, _, w, count = rep.take(rep.steps_per_epoch)
    assert rep.steps_per_epoch == 11 and int(count.sum()) == shards.n
    assert len(np.unique(X[..., 0][w > 0])) < shards.n  # i.i.d. draws repeat rows
    drop = ShardStream(shards, np.arange(shards.n_blocks), 100, "sequential", drop_last=True,
                       buffer_mb=0.002)
    X, _, w, count = drop.take(drop.steps_per_epoch)
    assert drop.steps_per_epoch == 10 and w.all() and int(count.sum()) == 1000
    np.testing.assert_array_equal(X[..., 0].ravel(), np.arange(1000))
    rep.close(), drop.close()


def test_tiny_buffer_sequential_equals_in_memory_bit_for_bit(shard_set):
    path, X, y = shard_set
    cfg = dict(model="logistic", batch_size=16, epochs=3, lr=0.5, sampling="sequential",
               standardize=False, validation_fraction=0.0, eval_every="1 epoch",
               chunk_steps=20)
    memory = train(from_arrays(X, y), None, TrainConfig(**cfg))
    streamed = sgdlab.fit(str(path), buffer_mb=TINY_MB, **cfg)
    assert streamed.extra["load_rows"] < 100
    assert (streamed.steps, streamed.examples) == (memory.steps, memory.examples) == (189, 3009)
    for key in ("W", "b"):
        np.testing.assert_array_equal(streamed.params[key], memory.params[key])
    assert [r["train_loss"] for r in streamed.history] == \
        [r["train_loss"] for r in memory.history]


def test_shuffled_stream_reaches_in_memory_accuracy(shard_set, tmp_path):
    path, X, y = shard_set
    Xv, yv = X[:300], y[:300]  # scored by both runs; noise-free comparison of the same set
    cfg = dict(model="logistic", batch_size=32, epochs=8, lr=0.2, seed=0)
    memory = sgdlab.fit(X, y, validation=(Xv, yv), **cfg)
    streamed = sgdlab.fit(str(path), validation=(Xv, yv), buffer_mb=TINY_MB, **cfg)
    acc_m = memory.history[-1]["val_accuracy"]
    acc_s = streamed.history[-1]["val_accuracy"]
    assert acc_m > 0.9 and abs(acc_s - acc_m) <= 0.02
    assert streamed.score(Xv, yv) == pytest.approx(acc_s)


def test_validation_is_held_out_and_streamed_by_blocks(shard_set):
    path, X, y = shard_set
    r = sgdlab.fit(str(path), model="logistic", batch_size=32, epochs=2, lr=0.2,
                   validation_fraction=0.2, buffer_mb=TINY_MB)
    shards = ShardSet(path)
    held = shards.n_blocks - round(0.8 * shards.n_blocks)
    n_train = r.steps_per_epoch  # ceil(n_train / 32)
    assert held == 4 and n_train == -(-(shards.n - 4 * 50) // 32)
    assert r.history[-1]["val_accuracy"] > 0.9


def test_buffer_smaller_than_a_block_is_a_config_error(shard_set):
    path, _, _ = shard_set
    with pytest.raises(ConfigError, match=r"--buffer-mb 1 or more.*--block-rows"):
        load_rows_for(ShardSet(path), 0.001)
    with pytest.raises(ConfigError, match=r"setting .buffer_mb. \(--buffer-mb\) must be a finite "
                                          "number > 0"):
        TrainConfig(buffer_mb=0)
    with pytest.raises(ConfigError, match="test_fraction is not supported"):
        sgdlab.fit(str(path), model="logistic", test_fraction=0.1)


def test_ranks_of_a_process_group_split_every_epoch_exactly(tmp_path):
    """world=2: each rank reads its own blocks; together they cover each row once per epoch."""
    shards = row_id_shards(tmp_path)
    ranks = [ShardStream(shards, np.arange(shards.n_blocks), 64, "shuffle", seed=5,
                         buffer_mb=0.002, rank=r, world=2) for r in range(2)]
    assert ranks[0].steps_per_epoch == ranks[1].steps_per_epoch
    assert set(ranks[0].blocks) & set(ranks[1].blocks) == set()
    for _epoch in range(2):
        parts = [s.take(s.steps_per_epoch) for s in ranks]
        ids = np.concatenate([X[..., 0][w > 0] for X, _, w, _ in parts])
        np.testing.assert_array_equal(np.sort(ids), np.arange(shards.n))
        np.testing.assert_array_equal(parts[0][3], parts[1][3])  # same global counts
        assert int(parts[0][3].sum()) == shards.n
    for s in ranks:
        s.close()


def test_streamed_validation_errors_say_how_to_fix(tmp_path, shard_set):
    from sgdlab.data.convert import convert
    path, X, y = shard_set
    one = convert(write_csv(tmp_path / "one.csv", X[:20], y[:20]), tmp_path / "one")
    with pytest.raises(ConfigError, match="has 1 block.*smaller --block-rows.*"
                                          r"\(--validation-fraction 0\)"):
        sgdlab.fit(str(one), model="logistic", batch_size=4)
    other = convert(write_csv(tmp_path / "w.csv", X[:20, :3], y[:20]), tmp_path / "w",
                    block_rows=5)
    with pytest.raises(ConfigError, match="validation shards .* have 3 features"):
        sgdlab.fit(str(path), validation=str(other), model="logistic")
    with pytest.raises(ConfigError, match="test data is not supported with streamed"):
        sgdlab.fit(str(path), test=(X, y), model="logistic")


def test_a_damaged_shard_fails_the_run_instead_of_hanging(tmp_path, shard_set):
    import shutil
    from sgdlab.errors import DataError
    path, _, _ = shard_set
    bad = tmp_path / "bad"
    shutil.copytree(path, bad)
    last = sorted(bad.glob("X-*.npy"))[-1]
    last.write_bytes(last.read_bytes()[:-8])  # the read-ahead thread hits the short file
    with pytest.raises(DataError, match="bytes where the manifest means"):
        sgdlab.fit(str(bad), model="logistic", sampling="sequential", validation_fraction=0,
                   buffer_mb=TINY_MB, epochs=1)
