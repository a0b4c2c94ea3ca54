"""A column name that appears twice is refused, naming it, wherever columns are matched by name:
CSV/TSV headers, Parquet schemas, DataFrames, and prediction (which once read the wrong column
of such a file)."""

import numpy as np
import pytest

from sgdlab.cli.main import main
from sgdlab.data import from_arrays, load_data
from sgdlab.data.convert import convert
from sgdlab.errors import DataError

ROWS = [(0.5, 1.0, -0.5, 1), (-1.0, 0.2, 0.3, 0), (0.7, -0.4, 1.2, 1), (-0.3, 0.9, -1.1, 0)]


def write_csv(path, header, delimiter=","):
    lines = [delimiter.join(header)] + [delimiter.join(map(str, r)) for r in ROWS * 5]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_parquet(path, names):
    import pyarrow as pa
    import pyarrow.parquet as pq
    cols = [pa.array([r[j] for r in ROWS * 5]) for j in range(4)]
    pq.write_table(pa.Table.from_arrays(cols, names=names), path)
    return path


DUPLICATE = r"the column name 'a' appears 2 times \(columns 1, 3, counting from 1\); every " \
            r"column needs its own name: rename the repeated ones"


@pytest.mark.parametrize("kind", ["csv", "tsv", "csv-spaces", "parquet"])
def test_a_repeated_column_name_is_refused_naming_it(tmp_path, kind):
    if kind == "parquet":
        path = write_parquet(tmp_path / "d.parquet", ["a", "b", "a", "y"])
    elif kind == "tsv":
        path = write_csv(tmp_path / "d.tsv", ["a", "b", "a", "y"], "\t")
    else:
        path = write_csv(tmp_path / "d.csv", ["a", "b", " a " if kind == "csv-spaces" else "a",
                                              "y"])
    where = r", line 1" if kind != "parquet" else ""
    with pytest.raises(DataError, match=rf"d\.\w+{where}: {DUPLICATE}"):
        load_data(str(path))
    with pytest.raises(DataError, match=DUPLICATE):
        convert(str(path), str(tmp_path / "shards"))
    assert not (tmp_path / "shards").exists()


def test_a_parquet_file_with_repeated_names_is_one_line(tmp_path, capsys):
    """pyarrow's own error listed the whole schema over several lines."""
    path = write_parquet(tmp_path / "d.parquet", ["a", "b", "a", "y"])
    assert main(["train", "--data", str(path), "--out", str(tmp_path / "run"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "appears 2 times" in err


def test_a_dataframe_with_repeated_columns_is_refused():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(np.ones((4, 3)), columns=["a", "b", "a"])
    with pytest.raises(DataError, match=r"the column name 'a' appears 2 times"):
        from_arrays(frame, np.arange(4) % 2)


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_predict_refuses_a_file_with_a_repeated_column(tmp_path, capsys, kind):
    write_csv(tmp_path / "good.csv", ["a", "b", "c", "y"])
    assert main(["train", "--data", str(tmp_path / "good.csv"), "--model", "logistic",
                 "--epochs", "1", "--batch-size", "4", "--out", str(tmp_path / "run"),
                 "--quiet"]) == 0
    path = write_parquet(tmp_path / "d.parquet", ["a", "b", "a", "y"]) if kind == "parquet" \
        else write_csv(tmp_path / "d.csv", ["a", "b", "a", "y"])
    capsys.readouterr()
    assert main(["predict", str(tmp_path / "run"), "--data", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "appears 2 times" in captured.err
