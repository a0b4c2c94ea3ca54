"""Time of loading and converting a numeric CSV against ``pyarrow.csv.read_csv`` on the same file.

    python benchmarks/bench_csv_load.py                  # 100,000 x 50, ~1 minute on 2 cores
    python benchmarks/bench_csv_load.py --rows 20000     # a quick look
    python benchmarks/bench_csv_load.py --json out.json

Writes a ``rows x cols`` CSV of standard normal features (9 significant digits) and an integer
label in 0..4 (and the same data as LibSVM), then reports, in one process:

* ``pyarrow.csv.read_csv`` (best of 3): the reference, with its own type inference;
* ``sgdlab.data.load_csv`` (best of 3, interleaved with the reference's runs) and its ratio
  to the reference (target: <= 2x);
* ``sgdlab.data.convert`` of the CSV to a shard set (best of 2; two passes over the file);
* ``load_data`` and ``convert`` of the LibSVM file (best of 2).

Run the same command on an older checkout for "before" figures (an older tree without LibSVM
loading reports it as ``-``). Measured on 2 shared cores (AMD EPYC, pyarrow 26), 58 MiB CSV:

======================  =========================  ==========================
                        per-cell parser (before)   pyarrow / vectorised (now)
======================  =========================  ==========================
read_csv (reference)    0.143 s                    0.122 s
load_csv                1.839 s (12.8x)            0.160 s (1.31x)
convert, CSV            3.618 s                    0.578 s
load, LibSVM            not supported              0.739 s
convert, LibSVM         5.514 s                    1.400 s
======================  =========================  ==========================
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _machine import best_of, cpu_model  # noqa: E402


def write_files(work: str, rows: int, cols: int, seed: int = 0) -> tuple[str, str]:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((rows, cols))
    y = rng.integers(0, 5, rows)
    csv_path, svm_path = os.path.join(work, "data.csv"), os.path.join(work, "data.svm")
    with open(csv_path, "w") as f:
        f.write(",".join(f"x{j}" for j in range(cols)) + ",label\n")
        np.savetxt(f, np.column_stack([X, y]), delimiter=",", fmt=["%.9g"] * cols + ["%d"])
    with open(svm_path, "w") as f:
        for start in range(0, rows, 10_000):
            block = X[start:start + 10_000]
            f.writelines(f"{t} " + " ".join(f"{j + 1}:{v:.9g}" for j, v in enumerate(row))
                         + "\n" for row, t in zip(block, y[start:start + 10_000]))
    return csv_path, svm_path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--cols", type=int, default=50)
    ap.add_argument("--json", help="also write the figures here")
    a = ap.parse_args(argv)

    import pyarrow as pa
    import pyarrow.csv as pacsv

    from sgdlab.data import convert, load_csv, load_data

    work = tempfile.mkdtemp(prefix="bench-csv-")
    try:
        csv_path, svm_path = write_files(work, a.rows, a.cols)
        mb = os.path.getsize(csv_path) / 2 ** 20
        print(f"{cpu_model()}, {os.cpu_count()} cores, pyarrow {pa.__version__} "
              f"({pa.cpu_count()} threads), numpy {np.__version__}")
        print(f"{a.rows:,} rows x {a.cols} features + label: CSV {mb:.1f} MiB, LibSVM "
              f"{os.path.getsize(svm_path) / 2 ** 20:.1f} MiB")

        ds = load_csv(csv_path)  # warm-up (imports, page cache), and a sanity check
        assert ds.X.shape == (a.rows, a.cols), ds.X.shape
        # interleaved, so that a busy moment of a shared machine hits both alike
        ref, ours = float("inf"), float("inf")
        for _ in range(3):
            ref = min(ref, best_of(lambda: pacsv.read_csv(csv_path), 1))
            ours = min(ours, best_of(lambda: load_csv(csv_path), 1))

        def convert_once(src):
            out = os.path.join(work, "shards")
            shutil.rmtree(out, ignore_errors=True)
            convert(src, out)

        conv = best_of(lambda: convert_once(csv_path), 2)
        try:
            load_data(svm_path)
            svm_load = best_of(lambda: load_data(svm_path), 2)
        except Exception:  # noqa: BLE001 (a tree that cannot load LibSVM yet)
            svm_load = None
        svm_conv = best_of(lambda: convert_once(svm_path), 2)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    figures = {"rows": a.rows, "cols": a.cols, "csv_mib": round(mb, 1),
               "pyarrow_read_csv_s": ref, "load_csv_s": ours, "ratio": ours / ref,
               "convert_csv_s": conv, "load_libsvm_s": svm_load, "convert_libsvm_s": svm_conv}
    print(f"pyarrow.csv.read_csv   {ref:7.3f} s")
    print(f"sgdlab load_csv        {ours:7.3f} s   {ours / ref:.2f}x read_csv (target <= 2x)")
    print(f"sgdlab convert (CSV)   {conv:7.3f} s   {mb / conv:.0f} MiB/s")
    print("sgdlab load (LibSVM)   " + (f"{svm_load:7.3f} s" if svm_load is not None
                                        else "      - (not supported)"))
    print(f"sgdlab convert (LibSVM) {svm_conv:6.3f} s")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(figures, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
