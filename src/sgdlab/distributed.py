"""Synchronous data parallelism over processes and machines, with JAX's distributed runtime.

Every process runs the same training (same config, same seed, so the same batch plan) on its
share of each global batch; the compiled step sums the partial objectives and gradients over
the device mesh (see :mod:`sgdlab.engine.batched`), so every process applies the same update.

* :func:`initialize` joins a run: ``jax.distributed.initialize`` with a coordinator
  ``HOST:PORT`` (process 0 hosts it), gloo collectives on CPU (NCCL is JAX's default on GPU),
  and bounded timeouts; returns the :class:`MeshPlacement` over every device of every process.
* :func:`launch_local` starts ``N`` worker processes on 127.0.0.1 and supervises them: when one
  fails, the others are stopped after a grace period, so a run never hangs on a dead peer.
* :func:`run_guarded` turns a failed collective (a peer died: gloo reports the closed
  connection) into one clear message and a prompt exit, instead of a C++ abort trace or a wait
  for the runtime's shutdown barrier.

* :class:`Watchdog` (started by :func:`initialize`) notices a dead peer even when this process
  is not inside a collective (compiling, evaluating): every process bumps a counter in the
  runtime's key-value store each second; a peer whose counter stalls for ``stale_s`` seconds,
  or a coordinator that stops answering, ends this process with a clear message.

As a last resort, the runtime's own heartbeat (``heartbeat_s``, longer than ``stale_s``) ends
every process, with JAX's message naming the missing task.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time

from .errors import ConfigError, SgdlabError

#: exit code of a worker that lost a peer (distinct from 1 = diverged, 2 = user error)
LOST_PEER = 3


class PeerLostError(SgdlabError):
    """Another process of a data-parallel run died or became unreachable."""


def parse_coordinator(text: str) -> tuple[str, int]:
    host, sep, port = str(text).rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"coordinator must be HOST:PORT (e.g. 10.0.0.1:7777), got {text!r}")
    return host, int(port)


def initialize(coordinator: str, num_processes: int, process_id: int, *,
               timeout_s: int = 120, stale_s: float = 10.0, heartbeat_s: int = 30):
    """Join the run; must come before any other JAX work in this process.

    Returns the :class:`MeshPlacement` over every device of every process; a
    :class:`Watchdog` runs until :func:`finish`.
    """
    parse_coordinator(coordinator)
    if not isinstance(num_processes, int) or num_processes < 1:
        raise ConfigError(f"number of processes must be >= 1, got {num_processes!r}")
    if not isinstance(process_id, int) or not 0 <= process_id < num_processes:
        raise ConfigError(f"process id must be in 0..{num_processes - 1}, got {process_id!r}")
    import jax
    # Collectives between CPU processes need an implementation; gloo ships with jaxlib.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    try:
        jax.distributed.initialize(coordinator, num_processes, process_id,
                                   initialization_timeout=timeout_s,
                                   heartbeat_timeout_seconds=heartbeat_s,
                                   shutdown_timeout_seconds=heartbeat_s)
    except Exception as e:  # noqa: BLE001 - the runtime raises several kinds
        raise PeerLostError(
            f"process {process_id} of {num_processes} could not join the run at {coordinator} "
            f"within {timeout_s} s ({_first_line(e)}); start every process with the same "
            "--coordinator and --num-processes, process 0 first reachable at that address"
        ) from None
    from .engine.batched import MeshPlacement
    global _WATCHDOG
    _WATCHDOG = Watchdog(process_id, num_processes, stale_s)
    return MeshPlacement()


_WATCHDOG: "Watchdog | None" = None


def finish() -> None:
    """A clean end: stop watching, then wait (bounded) until every process is done.

    Process 0 hosts the coordination service, so it must not leave while others still
    finish; the runtime's shutdown barrier ensures that.
    """
    import jax
    if _WATCHDOG is not None:
        _WATCHDOG.stop()
    jax.distributed.shutdown()


class Watchdog:
    """Per-process liveness through the runtime's key-value store (see the module docstring).

    Uses ``jax._src.distributed.global_state.client`` (the runtime's client; JAX exposes no
    public handle), so if that moves, only this early warning is lost, not the heartbeat.
    """

    def __init__(self, rank: int, world: int, stale_s: float, period_s: float = 1.0):
        from jax._src import distributed as jd
        self.client = jd.global_state.client
        self.rank, self.world, self.stale_s, self.period_s = rank, world, stale_s, period_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="sgdlab-watchdog")
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        try:
            self.client.key_value_set(f"sgdlab/done/{self.rank}", "1", allow_overwrite=True)
        except Exception:  # noqa: BLE001 - best effort at the end
            pass
        self._thread.join(timeout=5)

    def _run(self) -> None:
        seen: dict[int, tuple[str, float]] = {}
        beat = 0
        while not self._stop.wait(self.period_s):
            beat += 1
            now = time.monotonic()
            try:
                self.client.key_value_set(f"sgdlab/alive/{self.rank}", str(beat),
                                          allow_overwrite=True)
                for peer in range(self.world):
                    if peer == self.rank:
                        continue
                    if _try_get(self.client, f"sgdlab/done/{peer}") is not None:
                        continue  # finished cleanly: silence is expected
                    value = _try_get(self.client, f"sgdlab/alive/{peer}")
                    if value is None or value != seen.get(peer, (None, 0))[0]:
                        seen[peer] = (value, now)
                    elif now - seen[peer][1] > self.stale_s:
                        self._fail(f"process {peer} has given no sign of life for "
                                   f"{self.stale_s:g} s")
            except Exception as e:  # noqa: BLE001 - the coordinator (process 0) is gone
                if self._stop.is_set():
                    return
                self._fail(f"the coordinator (process 0) stopped answering: {_first_line(e)}")

    def _fail(self, why: str) -> None:
        if self._stop.is_set():
            return
        exit_now(LOST_PEER, f"sgdlab train: error: process {self.rank} of {self.world}: lost "
                            f"contact with another process of the run ({why}); stopping. "
                            "Check the other processes' output for the first error")


def _try_get(client, key: str):
    try:
        return client.key_value_try_get(key)
    except Exception as e:  # noqa: BLE001 - NOT_FOUND until the peer's first beat
        if "not found" in str(e).lower() or "not_found" in str(e).lower():
            return None
        raise


def run_guarded(fn, *args, **kwargs):
    """Call ``fn``; a collective that failed because a peer died becomes :class:`PeerLostError`."""
    import jax
    try:
        return fn(*args, **kwargs)
    except SgdlabError:
        raise
    except (jax.errors.JaxRuntimeError, RuntimeError, ValueError) as e:
        text = str(e)
        if not any(k in text.lower() for k in ("gloo", "connection", "peer", "heartbeat",
                                                 "unavailable", "coordination", "nccl")):
            raise
        raise PeerLostError(
            f"process {jax.process_index()} of {jax.process_count()}: lost contact with "
            f"another process of the run ({_first_line(e)}); stopping. Check the other "
            "processes' output for the first error") from None


def exit_now(code: int, message: str) -> None:
    """Print and leave at once: the runtime's own shutdown would wait for the dead peer."""
    print(message, file=sys.stderr, flush=True)
    sys.stdout.flush()
    os._exit(code)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch_local(worker_argv: list[str], n: int, *, grace_s: float = 20.0,
                 env: dict | None = None) -> int:
    """Run ``python -m sgdlab.cli.main *worker_argv`` as ``n`` processes on 127.0.0.1.

    Each worker gets ``--coordinator 127.0.0.1:PORT --num-processes n --process-id i``; workers
    other than 0 get ``--quiet``. Returns 0 when all succeed, else the first failure's code;
    once one worker fails, the rest get ``grace_s`` seconds to end by themselves (they normally
    do, through the failed collective) and are then terminated.

    SIGTERM and SIGINT sent to the launcher are forwarded once to every worker (which then
    checkpoint together at one chunk boundary and exit 143/130). The workers run in their own
    session so that a Ctrl-C in the terminal reaches them only through this forwarding, not
    twice (a second signal stops a worker at once).
    """
    if n < 1:
        raise ConfigError(f"--processes must be >= 1, got {n}")
    port = free_port()
    procs = []
    for i in range(n):
        argv = [sys.executable, "-m", "sgdlab.cli.main", *worker_argv,
                "--coordinator", f"127.0.0.1:{port}", "--num-processes", str(n),
                "--process-id", str(i)] + (["--quiet"] if i else [])
        procs.append(subprocess.Popen(argv, env=env, start_new_session=True))
    forwarded: list[int] = []
    restore = _forward_signals(procs, forwarded)
    first_fail, failed_at = 0, None
    try:
        while any(p.poll() is None for p in procs):
            for i, p in enumerate(procs):
                code = p.poll()
                if code not in (None, 0) and not first_fail and forwarded:
                    first_fail = code  # stopping as asked: no failure to report
                elif code not in (None, 0) and not first_fail:
                    first_fail, failed_at = code, time.monotonic()
                    print(f"sgdlab: process {i} of {n} exited with code {code}; waiting up to "
                          f"{grace_s:g} s for the others to stop", file=sys.stderr, flush=True)
            if failed_at is not None and time.monotonic() - failed_at > grace_s:
                for p in procs:
                    if p.poll() is None:
                        p.terminate()
                break
            time.sleep(0.1)
    finally:
        restore()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    codes = [p.returncode for p in procs]
    return first_fail or next((c for c in codes if c), 0)


def _forward_signals(procs: list, forwarded: list) -> "callable":
    """Pass SIGTERM/SIGINT on to ``procs`` (noting each in ``forwarded``); ``-> undo``."""
    import signal
    if threading.current_thread() is not threading.main_thread():
        return lambda: None  # handlers can only be set from the main thread

    def handler(signum, frame):
        forwarded.append(signum)
        for p in procs:
            if p.poll() is None:
                p.send_signal(signum)

    old = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    return lambda: [signal.signal(sig, h) for sig, h in old.items()]


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return (text[0] if text else type(e).__name__)[:300]
