"""Run files are written atomically and get the mode any program's files get: 0666 less the
umask (so a teammate can read a shared run directory under the usual umask 022)."""

import os
import stat

import pytest

from sgdlab.engine.rundir import write_json_atomic, write_text_atomic


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_run_files_honour_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        write_text_atomic(tmp_path / "history.csv", "step\n0\n")
        write_json_atomic(tmp_path / "metrics.json", {"a": float("nan")})
    finally:
        os.umask(old)
    for name in ("history.csv", "metrics.json"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == mode
    assert (tmp_path / "metrics.json").read_text().strip() == '{\n  "a": null\n}'
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp left
