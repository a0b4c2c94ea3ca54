"""Each input that once ended in a traceback, a silent exit or a misleading message, tried as a
user would: now one message naming what, where and how to fix it, exit code 2 (bad input) or 1
(the environment), never a traceback."""

import pytest

from sgdlab.cli.main import main


def run(capsys, *argv) -> tuple[int, str]:
    """``sgdlab ARGV`` in this process: its exit code and standard error."""
    capsys.readouterr()
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    return code, err


def one_error(err: str) -> str:
    errors = [line for line in err.splitlines() if ": error: " in line]
    assert len(errors) == 1, err
    return errors[0]


@pytest.mark.parametrize("flags,message", [
    (["--epochs", "1e308"], r"epochs 1e\+308 at 45 steps per epoch are inf steps, more than the "
                            r"2,147,483,647 a run can count; give at most 47,721,858 epochs"),
    (["--epochs", "1e12", "--max-time", "1s"], r"are 4\.5e\+13 steps, more than"),
    (["--max-steps", "3000000000"], r"max steps 3,000,000,000 is more than the 2,147,483,647 a "
                                    r"run can count"),
])
def test_a_step_count_beyond_the_counter_is_refused(tmp_path, capsys, flags, message):
    import re
    code, err = run(capsys, "train", *flags, "--out", tmp_path / "run", "--quiet")
    assert code == 2 and re.search(message, one_error(err))
    assert not (tmp_path / "run").exists()
