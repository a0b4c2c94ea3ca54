"""``--trust-code``: the one flag that lets a command import code that a run directory names.

A run directory is data: ``model.json`` and checkpoints describe a built-in network, or name
a user's network by import path (``"module:factory"``). Importing that path runs the module,
so ``predict``, ``export`` and ``train --resume/--init`` do it only with this flag, given
for that call (never from a settings file); see :func:`sgdlab.load`.
"""

from __future__ import annotations

TRUST_HELP = ("import the user network that the run directory names by import path "
              "('module:factory' in model.json or its checkpoint); that runs the module's code, "
              "so give it only for a run directory you trust. Without it such a run is refused "
              "with a message naming the module; built-in networks never need it")


def add_trust_option(parser) -> None:
    """Add ``--trust-code`` (``args.trust_code``) to ``parser`` or an argument group."""
    parser.add_argument("--trust-code", action="store_true", help=TRUST_HELP)
