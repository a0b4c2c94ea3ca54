"""Test support: stop a worker of a multi-process run at an exact step, from inside it.

Python imports ``sitecustomize`` at start-up from the path, so a test that puts this folder
on ``PYTHONPATH`` reaches every process of a run, including the workers that
``sgdlab train --processes N`` launches itself. It does nothing unless ``SGDLAB_TEST_STOP``
is set and the process is a worker (``--process-id I`` on its command line). Then, once
``sgdlab.api`` is imported, ``fit`` gets an extra callback that acts at the first ``"chunk"``
event whose step is at least ``STEP``, from inside the training loop:

* ``SGDLAB_TEST_STOP=sigterm:STEP``: worker 0 sends SIGTERM to its parent (the launcher,
  which forwards it to every worker), and every worker waits until its own SIGTERM has
  arrived (if it has not already: another worker may reach the step's event later than
  worker 0, after the forwarded signal) before it goes on. The signal has then reached the
  run's handler in all of them before the chunk boundary that follows, so the run stops (and
  checkpoints) at that very boundary. To see a SIGTERM whenever it comes, every SIGTERM
  handler installed in the process (the run's own) is wrapped to note it.
* ``SGDLAB_TEST_STOP=kill:STEP:I``: worker ``I`` kills itself with SIGKILL.
"""

import os
import sys


def _worker_id():
    argv = sys.argv
    for i, a in enumerate(argv):
        if a == "--process-id" and i + 1 < len(argv):
            return int(argv[i + 1])
        if a.startswith("--process-id="):
            return int(a.split("=", 1)[1])
    return None


def _note_sigterms(got: list) -> None:
    """Wrap every SIGTERM handler installed from now on so that it first appends to ``got``."""
    import signal
    install = signal.signal

    def signal_(signum, handler):
        if signum == signal.SIGTERM and callable(handler) and \
                not getattr(handler, "_notes_sigterm", False):
            inner = handler

            def handler(signum, frame):
                got.append(signum)
                return inner(signum, frame)
            handler._notes_sigterm = True
        return install(signum, handler)

    signal.signal = signal_


def _trigger(action: str, step: int, arg, me: int):
    import signal
    import time

    got: list = []
    if action == "sigterm":
        _note_sigterms(got)

    def sigterm():
        if me == 0:
            os.kill(os.getppid(), signal.SIGTERM)
        deadline = time.monotonic() + 60
        while not got:
            if time.monotonic() > deadline:
                print("stop hook: no SIGTERM came", file=sys.stderr, flush=True)
                os._exit(97)
            time.sleep(0.005)

    def kill():
        if me == int(arg):
            sys.stderr.flush()
            os.kill(os.getpid(), signal.SIGKILL)

    act = {"sigterm": sigterm, "kill": kill}[action]
    done = []

    def callback(event):
        if not done and event.get("event") == "chunk" and event["step"] >= step:
            done.append(event["step"])
            print(f"stop hook: {action} at step {event['step']} (process {me})",
                  file=sys.stderr, flush=True)
            act()

    return callback


def _chain(first, second):
    if first is None:
        return second

    def both(event):
        out = first(event)
        second(event)
        return out
    return both


def _patch(api, extra):
    fit = api.fit

    def patched_fit(*args, callback=None, **kwargs):
        return fit(*args, callback=_chain(callback, extra), **kwargs)

    patched_fit.__wrapped__ = fit
    api.fit = patched_fit


def _install():
    spec_text = os.environ.get("SGDLAB_TEST_STOP")
    me = _worker_id()
    if not spec_text or me is None:
        return
    action, step, *rest = spec_text.split(":")
    extra = _trigger(action, int(step), rest[0] if rest else None, me)

    import importlib.abc
    import importlib.machinery

    class Finder(importlib.abc.MetaPathFinder):
        """Patches ``sgdlab.api`` right after it is executed, before anyone imports ``fit``."""

        def find_spec(self, name, path, target=None):
            if name != "sgdlab.api":
                return None
            sys.meta_path.remove(self)
            spec = importlib.machinery.PathFinder.find_spec(name, path)
            if spec is None or spec.loader is None:
                return spec
            run = spec.loader.exec_module

            def exec_module(module):
                run(module)
                _patch(module, extra)

            spec.loader.exec_module = exec_module
            return spec

    sys.meta_path.insert(0, Finder())


_install()
