"""Read user data into a validated :class:`~sgdlab.data.dataset.Dataset`: the dispatcher.

Every loader returns ``X: (N, d)`` or ``(N, *example_shape)`` float32 (all finite) and
``y: (N,)`` (int32 class indices ``0..C-1`` for classification, float32 for regression).
Every mistake in the input raises
:class:`~sgdlab.errors.DataError` whose message names the file and, where it applies, the
1-based line (text files) or 0-based ``row index`` (binary files and arrays) and the column.

Supported sources (see :func:`load_data`; the file formats are those of
:data:`sgdlab.data.formats.FORMATS`):

* ``.csv`` / ``.tsv``: header row required, label column by name or index (default: last).
* ``.parquet`` / ``.pq``: numeric feature columns, any numeric/string/bool label column.
* ``.npy``: one 2-D numeric array ``(N, d + 1)`` whose **last column is the label** (an
  array of more axes is refused: save it as ``.npz``).
* ``.npz``: arrays ``X: (N, d)`` or ``(N, *example_shape)`` and ``y: (N,)`` (keys
  configurable).
* ``.svm`` / ``.libsvm`` / ``.svmlight``: ``label index:value ...`` lines (``n_features``,
  ``zero_based``).
* IDX images (MNIST's ``train-images-idx3-ubyte[.gz]``): ``X (N, H, W, 1)``, the labels from
  the ``train-labels-idx1-ubyte[.gz]`` file beside it (:mod:`sgdlab.data.idx`).
* Built-in names: the datasets of :data:`sgdlab.data.builtin.BUILTINS` (``digits``,
  ``digits-images``) and the synthetic generators in
  :data:`sgdlab.data.synthetic.GENERATORS`, e.g. ``"blobs:n=2000,d=20"``.

NumPy files are always opened with ``allow_pickle=False``: an object array would need pickle,
and unpickling a file can run arbitrary code, so such files are refused.
"""


from __future__ import annotations

import dataclasses
import inspect
import os

from ..errors import ConfigError, DataError
from .checks import check_task, not_a_shard_set
from .dataset import Dataset
from .formats import FORMATS, Format, ending, for_path

#: File extensions :func:`load_data` understands, mapped to a short description (from
#: :data:`~sgdlab.data.formats.FORMATS`).
EXTENSIONS = {ext: f.description for f in FORMATS.values() for ext in f.extensions}


# --------------------------------------------------------------------------------------------
# One entry point for every source
# --------------------------------------------------------------------------------------------


def builtin_names() -> list[str]:
    """Names :func:`load_data` accepts besides file paths."""
    from .builtin import BUILTINS
    from .synthetic import GENERATORS

    return [*BUILTINS, *GENERATORS]


def load_data(spec, label_column=None, task: str | None = None, seed: int = 0, **kwargs) -> Dataset:
    """Load data from a built-in name or a file path.

    Args:
      spec: ``"digits"`` or ``"digits-images"`` (see :data:`sgdlab.data.builtin.BUILTINS`), a
        synthetic generator with optional parameters (``"blobs"``, ``"blobs:n=2000,d=20"``,
        ``"images:height=16,width=16"``, see :data:`sgdlab.data.synthetic.GENERATORS`), or a
        path ending in ``.csv``, ``.tsv``, ``.parquet``/``.pq``, ``.npy``, ``.npz``,
        ``.svm``/``.libsvm``/``.svmlight``, or an IDX images file (``...idx3-ubyte[.gz]``).
      label_column: for CSV/TSV/Parquet only (see :func:`load_csv`).
      task: force ``"classification"``/``"regression"``; for built-ins it must match theirs.
      seed: seed for synthetic generators (a ``seed=`` in the spec wins).
      **kwargs: passed to the loader (``delimiter`` for text, ``x_key``/``y_key`` for ``.npz``,
        ``n_features``/``zero_based`` for LibSVM) or to the generator as extra parameters.

    Raises :class:`DataError` for a missing file (``file not found: ...``) or an unknown spec
    (listing the built-in names and supported extensions).
    """
    check_task(task)
    try:
        spec = os.fspath(spec)
    except TypeError:
        raise DataError(f"data spec must be a name or a path, got {type(spec).__name__}") from None
    ext = os.path.splitext(spec)[1].lower()
    fmt = for_path(spec)
    if fmt is not None:
        return _load_file(spec, ending(spec), fmt, label_column, task, kwargs)

    from .builtin import BUILTINS
    from .synthetic import GENERATORS, parse_spec

    base = spec.split(":", 1)[0].strip()
    if base in BUILTINS or base in GENERATORS:
        if label_column is not None:
            raise ConfigError(
                f"label_column applies to CSV and Parquet files, not to built-in data {base!r}"
            )
        if base in BUILTINS:
            if spec.strip() != base or kwargs:
                raise DataError(f"built-in {base!r} takes no parameters")
            ds = BUILTINS[base]()
        else:
            name, params = parse_spec(spec)
            gen = GENERATORS[name]
            for key, value in kwargs.items():
                if key in params:
                    raise ConfigError(
                        f"{name}: parameter {key!r} given twice (in the spec and as an argument)"
                    )
                params[key] = value
            _check_params(name, gen, params)
            params.setdefault("seed", seed)
            ds = gen(**params)
            ds = dataclasses.replace(ds, name=spec.strip())
        if task is not None and task != ds.task:
            raise DataError(f"built-in data {base!r} is a {ds.task} task, not {task}")
        return ds

    if os.path.isdir(spec):
        raise DataError(not_a_shard_set(spec))
    if os.path.exists(spec) and spec.lower().endswith(("idx1-ubyte", "idx1-ubyte.gz")):
        raise DataError(f"{spec}: is an IDX labels file; load the images file beside it "
                        "(...-images-idx3-ubyte), whose labels are read from this one")
    if os.path.exists(spec):
        raise DataError(
            f"{spec}: unsupported file type {ext or '(no extension)'!r}; supported extensions: "
            f"{', '.join(EXTENSIONS)}"
        )
    raise DataError(
        f"unknown data {spec!r}: not a built-in name ({', '.join(builtin_names())}) and not a "
        f"path ending in a supported extension ({', '.join(EXTENSIONS)})"
    )


def _check_params(name: str, fn, params: dict) -> None:
    valid = [p for p in inspect.signature(fn).parameters]
    for key in params:
        if key not in valid:
            raise ConfigError(
                f"{name}: unknown parameter {key!r}; valid parameters: {', '.join(valid)}"
            )


def _load_file(path: str, ext: str, fmt: Format, label_column, task, kwargs) -> Dataset:
    options = {**fmt.defaults, **kwargs}
    allowed = fmt.options
    if "label_column" in allowed:
        options["label_column"] = label_column
    elif label_column is not None:
        raise ConfigError(f"{path}: label_column does not apply to {ext} files "
                          f"({fmt.label_hint})")
    for key in options:
        if key not in allowed:
            raise ConfigError(
                f"{path}: option {key!r} does not apply to {ext} files; valid options: "
                f"{', '.join(sorted(allowed)) or '(none)'}"
            )
    return fmt.load(path, task=task, **options)
