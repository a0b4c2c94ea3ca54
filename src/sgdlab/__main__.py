"""``python -m sgdlab ...``: the same command line as the ``sgdlab`` script."""

import sys

from .cli.main import main

sys.exit(main())
