"""A training process for the kill tests: ``rel_child.py RUN_DIR TRACE MODE N [FRACTION]``.

Runs ``sgdlab train`` with the job of :mod:`rel_helpers` into RUN_DIR, recording every batch
to TRACE. MODE says where it dies by SIGKILL (a real ``kill -9``, sent to itself at an exact
moment, or by the parent process):

* ``steps``: nothing here; the parent kills it after reading the N-th ``take`` line.
* ``checkpoint``: at the N-th durable checkpoint file write, after writing FRACTION of its
  bytes to the temporary file (FRACTION 1.0: after the rename, before the next file).
* ``report``: at the N-th file write of the final report, FRACTION of the way through.
* ``none``: run to the end (the parent may send it SIGTERM or SIGINT).

(The kill tests resume in their own process: :func:`rel_helpers.resume_here`.)

With ``REL_SHARDS=SHARD_DIR`` in the environment it trains :data:`rel_helpers.STREAM_JOB`,
streamed from that shard set, and traces the streamed batches instead.
"""

import os
import signal
import sys

from rel_helpers import JOB, STREAM_JOB, install_stream_trace, install_trace


def die():
    os.kill(os.getpid(), signal.SIGKILL)


def kill_during_writes(module, name, n, fraction, gate=lambda: True):
    """Replace ``module.name(path, data)`` by a writer that dies during its n-th call."""
    original = getattr(module, name)
    calls = [0]

    def writer(path, data, *a, **k):
        if not gate():
            return original(path, data, *a, **k)
        calls[0] += 1
        if calls[0] < n:
            return original(path, data, *a, **k)
        if fraction >= 1.0:
            original(path, data, *a, **k)
            die()
        tmp = os.path.join(os.path.dirname(path), "." + os.path.basename(path) + ".tmp")
        with open(tmp, "wb") as f:
            f.write(data[:int(len(data) * fraction)])
            f.flush()
        die()

    setattr(module, name, writer)
    return calls


def main():
    run_dir, trace, mode, n = sys.argv[1:5]
    n = int(n)
    fraction = float(sys.argv[5]) if len(sys.argv) > 5 else 0.5
    shards = os.environ.get("REL_SHARDS")
    (install_stream_trace if shards else install_trace)(trace)
    import sgdlab.engine.checkpoint as ckpt
    import sgdlab.engine.rundir as rundir
    import sgdlab.files as files
    import sgdlab.report.plots as plots
    import sgdlab.report.run as report
    if mode == "checkpoint":
        kill_during_writes(ckpt, "write_durable", n, fraction)
    elif mode == "report":
        in_report = [False]
        original = report.write_run

        def write_run(*a, **k):
            in_report[0] = True
            return original(*a, **k)

        report.write_run = write_run
        calls = [0]
        for module in (files, rundir, plots):
            # one shared counter across every module's reference (files writes text and JSON
            # through its own; rundir's is the name save_params calls)
            def make(orig):
                def writer(path, data):
                    if in_report[0]:
                        calls[0] += 1
                        if calls[0] >= n:
                            tmp = os.path.join(os.path.dirname(str(path)),
                                               "." + os.path.basename(str(path)) + ".part")
                            with open(tmp, "wb") as f:
                                f.write(data[:int(len(data) * fraction)])
                            die()
                    return orig(path, data)
                return writer
            module.write_bytes_atomic = make(module.write_bytes_atomic)
    from sgdlab.cli.main import main as cli
    job = ["--data", shards, *STREAM_JOB] if shards else JOB
    sys.exit(cli(["train", *job, "--out", run_dir]))


if __name__ == "__main__":
    main()
