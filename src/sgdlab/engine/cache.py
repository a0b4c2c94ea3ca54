"""Compiled programs kept across runs, so many short runs do not each pay for compilation.

Compiling the chunk kernel takes about half a second on a 2-core CPU, while a run on a small
data set (a scikit-learn estimator inside ``GridSearchCV`` or ``cross_val_score``, a test) may
train for a few milliseconds. A compiled program depends only on

* *what* is computed: the model and loss functions, the L2 weight, the gradient method and
  the optimiser (kind, momentum, schedule; not the learning rate of a named optimiser, which
  is a runtime input of the kernel, see :mod:`.chunk`);
* the *shapes*: chunk steps ``K``, batch size ``B``, and the shape, dtype and placement of
  the training state, ``X: (N, d)`` and the loss targets ``T: (N,)``;
* constants compiled in, such as the regression evaluator's centring value;

never on the values of the data or the parameters. :func:`program_key` builds that key and
:func:`get_or_build` returns the program compiled earlier for an equal key, or compiles it.

Functions are part of a key by identity (Python functions hash by identity). The key holds a
reference to them, so a function cannot be collected and its ``id`` reused by another while
its entry lives. Models built afresh on every call (``models.mlp`` returns new closures) are
keyed by the names and options they were built from instead. The store is a small LRU.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from concurrent.futures import Future
from typing import Any, Callable

import jax

from ..optim import optimizer_options
from ..tasks import model_options
from .config import factories_taking, key_fields

#: Programs kept per kind (fast and checked chunk kernels, evaluators); the least recently
#: used goes first.
MAX_ENTRIES = 64

_STORES: dict[str, OrderedDict] = {
    "chunk": OrderedDict(), "checked_chunk": OrderedDict(), "evaluate": OrderedDict()}
_STATS = {"hits": 0, "misses": 0}
_BUILT: dict[str, int] = {kind: 0 for kind in _STORES}
#: Guards the stores and counts: threads may build programs at once (a sweep's runs made in
#: threads; its probe on a machine with CPUs to spare), never the same one twice.
_LOCK = threading.Lock()
#: ``(kind, key) -> Future`` of a program being built now, which other threads wait for.
_BUILDING: dict[tuple, Future] = {}


def _leaf_signature(x) -> tuple:
    """``(shape, dtype, weak_type, sharding)`` of one array: all that compilation sees."""
    return (tuple(getattr(x, "shape", ())), str(getattr(x, "dtype", type(x).__name__)),
            bool(getattr(x, "weak_type", False)), getattr(x, "sharding", None))


def tree_signature(tree) -> tuple:
    """Structure plus per-leaf :func:`_leaf_signature` of a pytree (hashable)."""
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    return (treedef, tuple(_leaf_signature(leaf) for leaf in leaves))


def _relevant(config, name: str):
    """A setting as it enters a program: a model's or an optimiser's option only for the
    model or optimiser whose factory declares it (a softmax run does not depend on the cnn's
    channels, nor a plain SGD run on momentum), the learning rate only as an optax schedule
    (a number is a runtime input)."""
    value = getattr(config, name)
    if factories_taking(name):
        takes = model_options(config.model) if name in key_fields("model") else \
            optimizer_options(config.optimizer)
        return value if name in takes else None
    if name == "lr":
        return value if callable(value) else None
    return value


def program_key(config, named: bool, model, loss, total_steps, *shapes: Any,
                training: bool = True) -> tuple:
    """Key for a program compiled from ``config`` with ``model``/``loss`` and these shapes.

    The settings that enter are derived from the roles :class:`TrainConfig` declares
    (:data:`sgdlab.engine.config.KEY_ROLES`): ``named`` says the model and loss were resolved
    from the config's names (keyed by the "model" settings the model's factory takes);
    otherwise the ``model``/``loss``
    objects are keyed by identity. The "objective" settings always enter; with ``training``
    the "optimizer" ones too (an evaluator does not depend on them); ``total_steps`` matters
    only to a non-constant learning-rate schedule. ``shapes`` are pytrees of arrays or plain
    hashables (``K``, ``B``, the "shape" settings).
    """
    if named:
        what: tuple = ("named",) + tuple(_relevant(config, f) for f in key_fields("model"))
    else:
        what = ("object", model, loss)
    how: tuple = tuple(getattr(config, f) for f in key_fields("objective"))
    if training:
        how += tuple(_relevant(config, f) for f in key_fields("optimizer"))
        # a non-constant schedule is spread over the run's steps; the runtime learning rate
        # is a scalar of JAX's default float type, which the x64 flag switches: a program
        # compiled for one cannot take the other
        how += (None if config.schedule == "constant" else total_steps,
                str(jax.dtypes.canonicalize_dtype(float)))
    return what + how + tuple(s if isinstance(s, (int, float, str, type(None)))
                              else tree_signature(s) for s in shapes)


#: Training sets with fewer rows than this are padded to a shared size (see :func:`pad_rows`).
PAD_BELOW_ROWS = 65536
#: ... and only when their features take fewer bytes than this: a padded copy of a large set
#: costs more (fresh memory is slow to fault in) than the compilation it would save.
PAD_BELOW_BYTES = 16 << 20
#: Chunks shorter than this are lengthened to a power of two (see :func:`bucket_steps`).
BUCKET_BELOW_STEPS = 512


def padded_rows(n: int, row_bytes: int = 0) -> int:
    """Rows of the device copy of an ``n``-row training set: ``n`` rounded up to a multiple
    of ``g = max(64, 2**(floor(log2 n) - 3))``, so at most 1/8 (or 63 rows) is padding.

    Cross-validation folds (1437 and 1438 rows) and the many small sets of a test suite then
    share one compiled program. Large sets (``n >= PAD_BELOW_ROWS``, or ``n * row_bytes >=
    PAD_BELOW_BYTES``) are not padded: their compilation is cheap next to their training, and
    unpadded they reach the device without a copy.
    """
    if n >= PAD_BELOW_ROWS or n * row_bytes >= PAD_BELOW_BYTES:
        return n
    g = max(64, 2 ** max(0, n.bit_length() - 4))
    return -(-n // g) * g


def pad_rows(a, n_to: int):
    """``a: (n, ...)`` NumPy array with zero rows appended up to ``n_to`` rows.

    Safe for the chunk kernel: batch plans only draw indices below the real ``n``, so padded
    rows are never read (and zeros stay finite should they ever be).
    """
    from ..data.hostmem import empty_aligned
    if len(a) == n_to:
        return a
    out = empty_aligned((n_to,) + a.shape[1:], a.dtype)
    out[:len(a)] = a
    out[len(a):] = 0
    return out


def bucket_steps(k: int) -> int:
    """A chunk length of ``k`` steps rounded up to a power of two when short.

    Small data sets have few steps per epoch, and the chunk is cut at each evaluation, so the
    natural chunk length varies with ``n``; the kernel runs only ``n_active`` steps whatever
    its length, so a longer chunk shape serves them all at no cost.
    """
    if k >= BUCKET_BELOW_STEPS:
        return k
    return 1 << (k - 1).bit_length()


def get_or_build(kind: str, key: tuple, build: Callable[[], Any]):
    """The program stored under ``key`` for ``kind``, or ``build()``'s, stored first.

    Safe to call from several threads: different keys build at the same time (compiling
    releases the interpreter lock), and a thread asking for a key another thread is building
    waits for that build instead of compiling it again."""
    store = _STORES[kind]
    with _LOCK:
        if key in store:
            store.move_to_end(key)
            _STATS["hits"] += 1
            return store[key]
        pending = _BUILDING.get((kind, key))
        mine = pending is None
        if mine:
            pending = _BUILDING[(kind, key)] = Future()
            _STATS["misses"] += 1
            _BUILT[kind] += 1
        else:
            _STATS["hits"] += 1
    if not mine:
        return pending.result()
    try:
        program = build()
    except BaseException as error:
        with _LOCK:
            del _BUILDING[(kind, key)]
        pending.set_exception(error)
        raise
    with _LOCK:
        store[key] = program
        while len(store) > MAX_ENTRIES:
            store.popitem(last=False)
        del _BUILDING[(kind, key)]
    pending.set_result(program)
    return program


def stats() -> dict:
    """``{"hits", "misses", "entries", "built": {kind: programs compiled}}`` since start (or
    the last :func:`clear`). ``built["chunk"]`` counts compiled training programs."""
    with _LOCK:
        return {**_STATS, "entries": sum(len(s) for s in _STORES.values()),
                "built": dict(_BUILT)}


def clear() -> None:
    """Forget every stored program (the next run compiles again)."""
    with _LOCK:
        for store in _STORES.values():
            store.clear()
        _STATS.update(hits=0, misses=0)
        _BUILT.update({kind: 0 for kind in _BUILT})
