"""The tutorial notebook (docs/tutorial.ipynb) runs top to bottom and says what it should."""

import json
import os
import re
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "docs" / "tutorial.ipynb"


def test_notebook_is_committed_without_outputs():
    nb = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None, cell["source"]


def _stdout(cell) -> str:
    return "".join(o.get("text", "") for o in cell.get("outputs", [])
                   if o.get("output_type") == "stream" and o.get("name") == "stdout")


@pytest.mark.slow
def test_notebook_executes(tmp_path):
    # the test extra installs these; a missing one is a failure, not a skip
    import ipykernel  # noqa: F401
    import nbclient
    import nbformat

    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=300, kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}})  # the kernel's working directory
    # Raises CellExecutionError on the first cell that fails.
    client.execute(env={**os.environ, "MPLBACKEND": "Agg"})

    code = [c for c in nb.cells if c.cell_type == "code"]
    for cell in code:
        errors = [o for o in cell.outputs if o.get("output_type") == "error"]
        assert not errors, errors
    text = "\n".join(_stdout(c) for c in code)
    assert "steps per epoch = 10" in text  # 2,000 examples in batches of 200
    assert "steps per epoch = 7" in text and "steps per epoch = 6" in text  # B = 300
    last = _stdout(code[-1])
    m = re.search(r"Recommended batch size: (\d+)", last)
    assert m, last
    assert int(m.group(1)) in (4, 16, 64, 256)
    assert "Next: sgdlab train --data digits" in last
    assert not list(tmp_path.iterdir()), "the notebook wrote files into its working directory"
