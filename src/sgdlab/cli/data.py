"""``sgdlab data convert IN OUT``: turn a data file (CSV/TSV, Parquet, NumPy, LibSVM) into a
shard set."""

from __future__ import annotations

from ..data.formats import FORMATS
from .common import Formatter


def _formats_text() -> str:
    """One line per registered format: its name, extensions and description."""
    exts = {name: "/".join(f.extensions + f.guessed_extensions) for name, f in FORMATS.items()}
    width, ext_width = max(map(len, exts)), max(map(len, exts.values()))
    return "\n".join(f"  {name:<{width}}  {exts[name]:<{ext_width}}  {f.description}"
                     for name, f in FORMATS.items())


EXAMPLES = """\
formats (--format, or from the extension):
""" + _formats_text() + """

examples:
  sgdlab data convert big.csv shards/                    # label: the last column
  sgdlab data convert big.csv shards/ --label-column y --task regression
  sgdlab data convert rcv1.svm shards/ --features 47236  # LibSVM / svmlight
  sgdlab data convert part.parquet shards/ --block-rows 8192
  sgdlab data convert arrays.npz shards/                 # arrays X and y
  sgdlab train --data shards/ --buffer-mb 64             # stream it: memory set by the buffer

A shard set is a directory of .npy feature and label shards, stats.npy (per-block feature
statistics for standardising without a pass) and manifest.json (shapes, dtypes, row counts,
sha256 checksums, classes, feature names). Conversion streams: memory is one input chunk and
one block, whatever the file size.

OUTPUT is written only when the conversion has succeeded: the shard set is built in a hidden
temporary directory beside it and renamed into place at the end, so a bad row leaves OUTPUT
as it was. OUTPUT must be new or empty; --overwrite replaces an existing shard set (a
directory holding manifest.json and shard files only), never a folder with other content and
never the one holding the input file.
"""


def register(sub) -> None:
    p = sub.add_parser("data", help="prepare data: convert files to a streamable shard set",
                       description=__doc__.strip(), epilog=EXAMPLES, formatter_class=Formatter)
    verbs = p.add_subparsers(dest="data_verb", metavar="SUBCOMMAND")
    verbs.required = True
    c = verbs.add_parser("convert", help="a data file (CSV, Parquet, NumPy, LibSVM) -> shard "
                                         "directory",
                         description=__doc__.strip(), epilog=EXAMPLES, formatter_class=Formatter)
    c.add_argument("input", help="a data file: " + ", ".join(
        ext for f in FORMATS.values() for ext in f.extensions + f.guessed_extensions))
    c.add_argument("output", help="directory to create (new or empty; or a shard set, "
                                  "with --overwrite)")
    c.add_argument("--format", choices=list(FORMATS),
                   help="input format (default: from the extension)")
    c.add_argument("--label-column", help="label column of a " + "/".join(
        name for name, f in FORMATS.items() if "label_column" in f.options)
        + " file, by name or 0-based index (default: the last)")
    c.add_argument("--task", choices=["classification", "regression"],
                   help="override the task inferred from the labels")
    c.add_argument("--classes", help="declare the class labels, comma-separated, instead of "
                                     "discovering them (a label outside them is an error)")
    c.add_argument("--block-rows", type=int, help="rows per block (default: ~4 MiB of features)")
    c.add_argument("--features", type=int, help="LibSVM: number of features (default: the "
                                                "largest index seen, up to 1,000,000; give it "
                                                "for more)")
    c.add_argument("--zero-based", action="store_true", help="LibSVM indices start at 0")
    c.add_argument("--overwrite", action="store_true",
                   help="replace OUTPUT if it is a shard set (only once the new one is complete)")
    c.add_argument("--verify", action="store_true", help="re-read and check every checksum")
    c.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from ..data.convert import convert
    from ..data.shards import ShardSet
    from ..errors import ConfigError
    from .display import console

    if args.block_rows is not None and args.block_rows < 1:
        raise ConfigError(f"--block-rows must be >= 1, got {args.block_rows}")
    if args.features is not None and args.features < 1:
        raise ConfigError(f"--features must be >= 1, got {args.features}")
    classes = None
    if args.classes:
        classes = [_number_or_text(c.strip()) for c in args.classes.split(",") if c.strip()]
    progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                        MofNCompleteColumn(), TextColumn("rows"), TimeElapsedColumn(),
                        console=console, disable=args.quiet)
    tasks: dict = {}

    def tick(phase: str, done: int, total: int) -> None:
        if phase not in tasks:
            tasks[phase] = progress.add_task(phase, total=total or None)
        progress.update(tasks[phase], completed=done, total=total or None)

    with progress:
        out = convert(args.input, args.output, fmt=args.format, label_column=args.label_column,
                      task=args.task, classes=classes, block_rows=args.block_rows,
                      n_features=args.features, zero_based=args.zero_based,
                      overwrite=args.overwrite, progress=tick)
    shards = ShardSet(out)
    if args.verify:
        shards.verify()
    if not args.quiet:
        shape = shards.example_shape
        each = f"{shards.d} features" if len(shape) == 1 else \
            f"examples of shape {' x '.join(map(str, shape))}"
        console.print(f"{shards.n:,} rows x {each}, {shards.task}"
                      + (f", {shards.n_classes} classes" if shards.n_classes else "")
                      + f", {shards.n_blocks} blocks of {shards.block_rows} rows "
                      f"in {len(shards.shards)} shard(s) -> {out}")
    return 0


def _number_or_text(s: str):
    try:
        f = float(s)
    except ValueError:
        return s
    return int(f) if f.is_integer() else f
