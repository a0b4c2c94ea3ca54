"""A sweep's runs on a Ray cluster: one long-lived worker per device, the search left as it is.

``run_sweep(..., executor=RayExecutor())`` (``sgdlab sweep --workers ray``) makes every
``RunBook.run_all`` concurrent (:mod:`.runbook`): the points and seeds of a search round, the
batch sizes, the pilot's and the confirmation's runs. The sweep's own logic (bracket,
widening, refinement, caps, statistics) stays in the driver and decides exactly what it does
in one process, so the records, the learning rates kept and the steps to target are the same.

Why Ray core actors and not Ray Tune: Tune would own the search (its trials, schedulers and
stopping rules) and start a trainable per trial; sgdlab's search is rounds of independent runs
whose caps follow from the earlier rounds, which is exactly a list of tasks per round. A
long-lived actor per device keeps what a trial would rebuild: the data placed on its device
once, and one compiled program per batch size (JAX's cache lives in the process), reused for
every learning rate and seed it receives.

What each worker reserves (so no two runs share a device): one GPU (``num_gpus=1``, and the
node's CPUs divided among its GPUs) on a node with GPUs; on a CPU node, the whole node's CPUs
by default, or ``cpus_per_run`` (``--cpus-per-run``), one worker per share. Workers are spread
over the nodes (one per device) and each runs one run at a time.

Timing: the probe, the replays and the noise run go to one *timing worker*
(:meth:`RayWorkers.call`), one call after another in the sweep's own order, while no other run
of the sweep is in flight (the sweep's phases follow each other). So every time of one
comparison comes from one device, as in one process, even when workers share a node. A sweep
uses workers of one device kind only (a cluster of several kinds is refused, with one
message), and its records name the node and kind that made each run.

Faults: a worker process that dies mid-run is restarted by Ray while its run goes back to the
queue and is redone by the next free worker; the driver saves each record (atomically) as it
arrives, so a killed driver rerun with the same ``--out`` reuses every finished run; a cluster
that disappears ends the sweep with :class:`ClusterError` (one message), the finished records
kept.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field

from ..errors import ConfigError, SgdlabError
from .records import here

#: What to run when Ray is missing.
INSTALL = "pip install -e '.[ray]'"
#: Seconds between checks that the cluster still answers while no run finishes.
HEALTH_SECONDS = 10.0


class ClusterError(SgdlabError):
    """The Ray cluster cannot be reached, was lost, or cannot run the sweep's workers."""


class WorkerRestarted(RuntimeError):
    """A call reached a worker process that Ray restarted and that holds no data yet."""


def import_ray():
    """The ``ray`` module, or one :class:`ClusterError` naming the command that installs it."""
    try:
        import ray
    except ImportError:
        raise ClusterError(f"running a sweep on Ray needs Ray, which is not installed: "
                           f"{INSTALL} (or pip install 'sgdlab[ray]')") from None
    return ray


def parse_workers(text: str | None) -> str | None:
    """``--workers``: None or ``''`` (in this process) -> None; ``ray`` -> ``''`` (RAY_ADDRESS,
    else a local Ray instance); ``ray://HOST:PORT`` -> itself."""
    if text is None or text == "":
        return None
    if text == "ray":
        return ""
    host, _, port = text[len("ray://"):].rpartition(":")
    if text.startswith("ray://") and host and port.isdigit() and 0 < int(port) < 65536:
        return text
    raise ConfigError(f"--workers must be 'ray' (the cluster at RAY_ADDRESS, else a local Ray "
                      f"instance) or 'ray://HOST:PORT' (e.g. ray://10.0.0.1:10001), got "
                      f"{text!r}")


class SweepWorker:
    """One worker's state: a :class:`~.runbook.RunBook` of the sweep's data (placed on this
    worker's device by its first run) and the compiled programs of the batch sizes it ran.
    :meth:`setup` gives it the data (again after Ray restarted a dead worker process)."""

    book = None

    def setup(self, data, fingerprint: str, model, loss) -> tuple:
        """Hold the sweep's data; ``-> (Placement, pid)`` of this worker."""
        from .runbook import RunBook
        train_part, validation = data
        self.book = RunBook(train_part, validation, fingerprint=fingerprint, model=model,
                            loss=loss)
        return here(), os.getpid()

    def make(self, request) -> tuple:
        """``(record, start time, end time)`` of one run (wall clock, for the overhead)."""
        t0 = time.time()
        record = self._book().make(request)
        return record, t0, time.time()

    def call(self, fn, *args):
        return fn(self._book(), *args, progress=None)

    def _book(self):
        if self.book is None:  # a process Ray restarted after the last one died
            raise WorkerRestarted("this worker was restarted and holds no data yet")
        return self.book


@dataclass
class _Worker:
    handle: object
    node: str = ""
    pid: int = 0
    batch_sizes: set = field(default_factory=set)  # programs compiled in this process


@dataclass
class Overheads:
    """Per run: seconds from submission to the start on a worker, and from the end there to
    the record's arrival here (wall clocks; meaningful when the driver and the worker share
    a machine)."""

    submit_to_start: list = field(default_factory=list)
    end_to_driver: list = field(default_factory=list)


class RayExecutor:
    """Where a sweep's runs are made: the workers of a Ray cluster (module docstring).

    ``address``: None (``RAY_ADDRESS``, else a local Ray instance started here and stopped by
    :meth:`close`) or ``ray://HOST:PORT``; when this process is already connected to Ray,
    that connection is used. ``cpus_per_run``: CPUs a worker reserves on a node without GPUs
    (default: all of the node's). ``wait_seconds``: how long workers may take to start or
    come back before the sweep gives up. A context manager; :meth:`close` stops its workers.
    """

    def __init__(self, address: str | None = None, *, cpus_per_run: int | None = None,
                 wait_seconds: float = 300.0):
        if cpus_per_run is not None and (not isinstance(cpus_per_run, int) or
                                         isinstance(cpus_per_run, bool) or cpus_per_run < 1):
            raise ConfigError(f"--cpus-per-run must be a whole number >= 1, got "
                              f"{cpus_per_run!r}")
        self.ray = import_ray()
        self.cpus_per_run, self.wait_seconds = cpus_per_run, wait_seconds
        self.where = address or os.environ.get("RAY_ADDRESS") or "a local Ray instance"
        self.owned = False
        if not self.ray.is_initialized():
            given = address or os.environ.get("RAY_ADDRESS")
            # "local": a new instance, never another one found on this machine
            options = {"address": given} if given else {"address": "local",
                                                        "include_dashboard": False}
            try:
                self.ray.init(log_to_driver=False, logging_level=logging.ERROR, **options)
            except Exception as e:  # noqa: BLE001 - Ray raises several kinds
                raise ClusterError(f"could not connect to Ray at {self.where} "
                                   f"({_first_line(e)}); start a head node with 'ray start "
                                   "--head' and give its address (RAY_ADDRESS or --workers "
                                   "ray://HOST:10001)") from None
            self.owned = True
        self.workers: RayWorkers | None = None

    def start(self, book) -> "RayWorkers":
        """Start one worker per device with ``book``'s data (stopping an earlier sweep's)."""
        if self.workers is not None:
            self.workers.close()
        self.workers = RayWorkers(self, book)
        return self.workers

    def close(self) -> None:
        if self.workers is not None:
            self.workers.close()
            self.workers = None
        if self.owned and self.ray.is_initialized():
            self.ray.shutdown()
        self.owned = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def slots(self) -> list[tuple]:
        """``[(node id, {resources of one worker})]`` of the cluster (:func:`worker_slots`)."""
        out = worker_slots(self._guard(self.ray.nodes), self.cpus_per_run)
        if not out:
            need = f"{self.cpus_per_run} CPUs" if self.cpus_per_run else "a CPU"
            raise ClusterError(f"the Ray cluster at {self.where} has no node with a GPU or "
                               f"with {need} for a worker; add nodes ('ray start --address "
                               "HEAD:6379') or lower --cpus-per-run")
        return out

    def _guard(self, fn, *args, **kwargs):
        """``fn(*args, **kwargs)``, a lost cluster turned into :class:`ClusterError`."""
        ray = self.ray
        try:
            return fn(*args, **kwargs)
        except (ray.exceptions.RayActorError, ray.exceptions.RayTaskError):
            raise
        except (ray.exceptions.RayError, ConnectionError) as e:
            raise self.lost(e) from None

    def every_worker_lost(self, when: str = "") -> ClusterError:
        """The sweep's workers are all dead and none came back (the cluster went away, or
        its nodes died)."""
        return ClusterError(f"the Ray cluster at {self.where} lost every worker of this "
                            f"sweep{when}; the runs finished so far are kept under --out: "
                            "start the cluster again and rerun the same command to continue")

    def lost(self, e: Exception) -> ClusterError:
        return ClusterError(f"the Ray cluster at {self.where} was lost mid-sweep "
                            f"({_first_line(e)}); the runs finished so far are kept under "
                            "--out: start the cluster again and rerun the same command to "
                            "continue")


class RayWorkers:
    """The workers of one sweep: ``make_all``, ``call``, ``device``, ``close``
    (:mod:`.runbook`'s executor protocol) and the :class:`Overheads` measured."""

    def __init__(self, executor: RayExecutor, book):
        self.executor, ray = executor, executor.ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
        actor = ray.remote(SweepWorker)
        # the data once in the object store (each node fetches it once); kept referenced here,
        # so a restarted worker can be given it again
        self.data = (executor._guard(ray.put, (book.train_part, book.validation)),
                     book.fingerprint, book.model, book.loss)
        self.workers = []
        for node_id, share in executor.slots():
            handle = actor.options(
                **share, max_restarts=-1, max_task_retries=0,
                scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=True),
            ).remote()
            self.workers.append(_Worker(handle))
        self.overheads = Overheads()
        self.redone = 0
        try:
            described = self._await({self._setup(w): w for w in self.workers}, "start")
        except (ClusterError, ray.exceptions.RayActorError):
            self.close()
            raise
        for w, (placement, pid) in described:
            w.node, w.pid = placement.node, pid
        try:
            self.device = one_device_kind([p for _, (p, _) in described], executor.where)
        except ClusterError:
            self.close()
            raise

    def _setup(self, w: _Worker):
        """The ref of ``w``'s :meth:`SweepWorker.setup` with the sweep's data."""
        return w.handle.setup.remote(*self.data)

    def pids(self) -> list[int]:
        """The worker processes' ids (a restarted worker's new one once it answered)."""
        return [w.pid for w in self.workers]

    def _await(self, pending: dict, what: str) -> list:
        """``[(worker, result)]`` of ``{ref: worker}`` setup calls, within the wait."""
        ray, out = self.executor.ray, []
        deadline = time.monotonic() + self.executor.wait_seconds
        while pending:
            ready, _ = self.executor._guard(ray.wait, list(pending), num_returns=1,
                                            timeout=max(0.0, deadline - time.monotonic()))
            if not ready:
                raise ClusterError(f"{len(pending)} Ray worker(s) did not {what} within "
                                   f"{self.executor.wait_seconds:.0f} s on the cluster at "
                                   f"{self.executor.where}: its devices may be taken by "
                                   "another job; free them or lower --cpus-per-run")
            w = pending.pop(ready[0])
            out.append((w, self.executor._guard(ray.get, ready[0])))
        return out

    def make_all(self, requests: list, started, finished) -> None:
        """Every request on a free worker (one run per worker at a time); a worker that dies
        mid-run is restarted and its run is redone by the next free worker."""
        ray = self.executor.ray
        queue = list(range(len(requests)))
        idle = list(self.workers)
        busy: dict = {}        # ref -> (worker, request index, submitted at)
        returning: dict = {}   # ref of a restarted worker's setup() -> worker
        announced: set = set()
        since = time.monotonic()
        while queue or busy:
            while idle and queue:
                w = idle.pop(0)
                j = self._pick(w, queue, requests)
                queue.remove(j)
                w.batch_sizes.add(requests[j].config.batch_size)
                busy[w.handle.make.remote(requests[j])] = (w, j, time.time())
                if j not in announced:
                    announced.add(j)
                    started(j)
            if not busy and not returning:
                raise self.executor.every_worker_lost()
            ready, _ = self.executor._guard(ray.wait, [*busy, *returning], num_returns=1,
                                            timeout=HEALTH_SECONDS)
            if not ready:
                self.executor._guard(ray.cluster_resources)  # still there?
                if not busy and time.monotonic() - since > self.executor.wait_seconds:
                    raise ClusterError(f"no Ray worker came back within "
                                       f"{self.executor.wait_seconds:.0f} s; the runs "
                                       "finished so far are kept under --out")
                continue
            since = time.monotonic()
            ref = ready[0]
            if ref in returning:
                w = returning.pop(ref)
                try:
                    placement, w.pid = self.executor._guard(ray.get, ref)
                except ray.exceptions.RayActorError:
                    continue  # gone for good: the others carry on
                self._check_kind(placement)
                idle.append(w)
                continue
            w, j, submitted = busy.pop(ref)
            try:
                record, t0, t1 = self._get(ref)
            except (ray.exceptions.RayActorError, WorkerRestarted):
                self.redone += 1
                queue.insert(0, j)
                w.batch_sizes.clear()
                returning[self._setup(w)] = w
                continue
            self.overheads.submit_to_start.append(t0 - submitted)
            self.overheads.end_to_driver.append(time.time() - t1)
            self._check_kind(record.ran_on)
            idle.append(w)
            finished(j, record)

    def _pick(self, w: _Worker, queue: list, requests: list) -> int:
        """The next request for ``w``: first one of a batch size it compiled, else one no
        worker compiled yet (each worker keeps to its batch sizes), else the first."""
        def b(j):
            return requests[j].config.batch_size
        mine = [j for j in queue if b(j) in w.batch_sizes]
        if mine:
            return mine[0]
        anyone = set().union(*(x.batch_sizes for x in self.workers))
        fresh = [j for j in queue if b(j) not in anyone]
        return (fresh or queue)[0]

    def _get(self, ref):
        """``ray.get(ref)``: a run's own error raised as itself (e.g. a ``ConfigError``)."""
        ray = self.executor.ray
        try:
            return self.executor._guard(ray.get, ref)
        except ray.exceptions.RayTaskError as e:
            cause = getattr(e, "cause", None)
            if isinstance(cause, Exception):
                raise cause from None
            raise

    def _check_kind(self, placement) -> None:
        if placement.device != self.device:
            raise ClusterError(f"a Ray worker of this sweep came back on a device of another "
                               f"kind ({placement.device} on {placement.node}, the sweep "
                               f"runs on {self.device}); the runs finished so far are kept "
                               "under --out: rerun on a cluster of one device kind")

    def call(self, fn, *args):
        """``fn(book, *args)`` on the timing worker (the first, or the next when it died
        and did not come back): the call is made again on a worker of the same kind."""
        ray = self.executor.ray
        for attempt in range(2 * len(self.workers) + 1):
            w = self.workers[attempt % len(self.workers)]
            try:
                return self._get(w.handle.call.remote(fn, *args))
            except (ray.exceptions.RayActorError, WorkerRestarted):
                self.redone += 1
                w.batch_sizes.clear()
                try:  # Ray restarts the process: give it the data again
                    self._await({self._setup(w): w}, "come back")
                except (ClusterError, ray.exceptions.RayActorError):
                    continue  # not back in time: the next worker
        raise self.executor.every_worker_lost(" while timing")

    def close(self) -> None:
        for w in self.workers:
            try:
                self.executor.ray.kill(w.handle)
            except Exception:  # noqa: BLE001 - already gone with its cluster
                pass
        self.workers = []


def worker_slots(nodes: list[dict], cpus_per_run: int | None) -> list[tuple]:
    """``[(node id, {resources one worker reserves})]`` of the live ``nodes`` (as
    ``ray.nodes()`` lists them): one per GPU (``num_gpus=1`` and the node's CPUs shared among
    its GPUs) on a node with GPUs; else one per ``cpus_per_run`` CPUs (None: the whole node)."""
    out = []
    for node in nodes:
        if not node.get("Alive"):
            continue
        res = node.get("Resources", {})
        cpus, gpus = int(res.get("CPU", 0)), int(res.get("GPU", 0))
        if gpus:
            share, count = {"num_gpus": 1, "num_cpus": cpus // gpus}, gpus
        else:
            per = cpus_per_run or cpus
            share, count = {"num_cpus": per}, (cpus // per if per else 0)
        out += [(node["NodeID"], share)] * count
    return out


def one_device_kind(placements: list, where: str) -> str:
    """The one device kind of the workers' :class:`~.records.Placement` s; several kinds are
    one :class:`ClusterError` (times are compared on one kind only)."""
    kinds: dict = {}
    for p in placements:
        kinds.setdefault(p.device, []).append(p.node)
    if len(kinds) == 1:
        return next(iter(kinds))
    listed = "; ".join(f"{kind}: {len(nodes)} worker(s) on {len(set(nodes))} node(s)"
                       for kind, nodes in sorted(kinds.items()))
    raise ClusterError(f"the Ray cluster at {where} has workers of {len(kinds)} device kinds "
                       f"({listed}); a sweep compares times measured on one kind only: run "
                       "it on a cluster whose nodes have one kind of device")


def _first_line(e: Exception) -> str:
    text = str(e).strip().splitlines()
    return text[0][:200] if text else type(e).__name__


__all__ = ["ClusterError", "INSTALL", "Overheads", "RayExecutor", "RayWorkers", "SweepWorker",
           "WorkerRestarted", "import_ray", "one_device_kind", "parse_workers", "worker_slots"]
