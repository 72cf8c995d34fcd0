"""Allow ``python -m vidgo_async``."""

import sys

from ._cli import main

sys.exit(main())
