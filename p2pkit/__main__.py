"""``python -m p2pkit ...``: the same as the ``p2pkit`` console script."""

import sys

from p2pkit.cli import main

sys.exit(main())
