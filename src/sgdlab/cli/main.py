"""``sgdlab`` command line: one verb per job, each with ``--help`` and examples.

Every user mistake (an :class:`~sgdlab.errors.SgdlabError`) is printed as one message and exits
with code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings

from .. import __version__
from ..errors import SgdlabError
from .common import blame_config, read_setting_flags

#: verb -> module under sgdlab.cli with ``register(subparsers)`` and ``run(args) -> int``
VERBS = {"train": "train", "sweep": "sweep", "gradcheck": "gradcheck",
         "compare-methods": "compare_methods", "landscape": "landscape", "data": "data",
         "predict": "predict", "export": "export"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sgdlab",
        description="Mini-batch gradient descent, measured: train models and find the batch "
                    "size and learning rate that reach a target accuracy fastest here.",
        epilog="Run 'sgdlab VERB --help' for a verb's options and examples.")
    parser.add_argument("--version", action="version", version=f"sgdlab {__version__}")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    sub.required = True
    for verb, module in VERBS.items():
        importlib.import_module(f"sgdlab.cli.{module}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    for name, value in vars(args).items():  # no file name or setting holds one
        if isinstance(value, str) and "\x00" in value:
            parser.error(f"argument {name.replace('_', '-')} contains a NUL character")
    args.argv = list(argv) if argv is not None else sys.argv[1:]  # for relaunching workers
    try:
        read_setting_flags(args)
        with warnings.catch_warnings():
            warnings.showwarning = _one_line(args.verb)
            return int(args.func(args) or 0)
    except SgdlabError as e:
        message = blame_config(str(e), getattr(args, "config", None))
        print(f"sgdlab {args.verb}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"sgdlab {args.verb}: interrupted", file=sys.stderr)
        return 130
    except SystemExit as e:  # sgdlab never exits from inside a verb: the user's code did
        print(f"sgdlab {args.verb}: error: code given to sgdlab (a network's init or apply, a "
              f"loss, a callback) called sys.exit({e.code!r}); a network or callback must "
              "return, or raise an exception", file=sys.stderr)
        return 2


def _one_line(verb: str):
    """A ``warnings.showwarning`` that prints ``sgdlab VERB: warning: message``: a warning
    (sgdlab's own, a library's such as matplotlib's, the user's code's) is for the user, not
    a source line of whichever module raised it."""
    def show(message, category, filename, lineno, file=None, line=None):
        text = " ".join(str(message).split())
        print(f"sgdlab {verb}: warning: {text}", file=sys.stderr)
    return show


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
