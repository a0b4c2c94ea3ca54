"""``--overwrite``: the one flag that lets a verb replace a run of its own in ``--out``.

Every verb that writes a run directory claims ``--out`` first (:mod:`sgdlab.engine.claim`): a
new or empty directory is marked as its run; a directory holding anything else is refused;
an existing run of the same verb is continued where the verb continues runs (``train
--resume``, a sweep re-run) and otherwise replaced only with this flag, the new run built
beside the old one and swapped in when complete.
"""

from __future__ import annotations

OVERWRITE_HELP = ("replace the {verb} run already in --out: the new run is built beside it "
                  "and replaces it only when it has finished, so an interrupted one leaves the "
                  "old run whole (a directory holding anything else is always refused)")


def add_overwrite_option(parser, verb: str, extra: str = "") -> None:
    """Add ``--overwrite`` (``args.overwrite``) to ``parser`` or an argument group."""
    parser.add_argument("--overwrite", action="store_true",
                        help=OVERWRITE_HELP.format(verb=verb) + extra)


def claiming_out(verb: str, run, *, resume: bool = False):
    """``run(args)`` with ``--out`` claimed for ``verb`` around it (lock, marker, overwrite;
    ``resume``: an existing run of ``verb`` is continued). ``run`` writes into ``args.out``,
    which is ``--out`` itself or, while an overwrite is built, the hidden directory beside it;
    ``args.final_out`` is ``--out`` (to name in messages). Committed when ``run`` returns."""
    def claimed(args) -> int:
        from pathlib import Path

        from ..engine.claim import claim_output
        from .common import default_out
        final = Path(args.out or default_out(verb))
        with claim_output(final, verb, overwrite=args.overwrite, resume=resume) as claim:
            args.out, args.final_out = str(claim.path), final
            return run(args)
    return claimed
