"""Data: loaders for files and arrays, built-in and synthetic datasets, splits, scaling.

Every loader returns a validated :class:`Dataset` (``X: (N, d)`` or ``(N, *example_shape)``
float32, e.g. images ``(N, H, W, C)``; ``y: (N,)``); the file formats (CSV/TSV, Parquet, NumPy,
LibSVM, IDX) are registered in :data:`FORMATS`. Data
larger than memory is converted to a :class:`ShardSet` (:func:`convert`) and streamed
(:mod:`sgdlab.data.stream`).
"""

from .arrays import from_arrays as from_arrays
from .arrays import load_npy as load_npy
from .arrays import load_npz as load_npz
from .builtin import digits as digits
from .builtin import digits_images as digits_images
from .columnar import load_parquet as load_parquet
from .convert import convert as convert
from .convert import write_shards as write_shards
from .dataset import Dataset as Dataset
from .formats import FORMATS as FORMATS
from .formats import Format as Format
from .idx import load_idx as load_idx
from .libsvm import load_libsvm as load_libsvm
from .loaders import load_data as load_data
from .shards import ShardSet as ShardSet
from .split import Splits as Splits
from .split import Standardizer as Standardizer
from .split import TargetScaler as TargetScaler
from .split import split as split
from .synthetic import GENERATORS as GENERATORS
from .text import load_csv as load_csv
