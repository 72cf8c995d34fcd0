"""Allow ``python -m vidgo_async``."""

import os
import sys

from ._cli import main
from ._main_guard import release

release()  # imported: the command line handles its own signals from here on

code = main()
if code in (130, 143):  # stopped by a signal: exit now, so a late one cannot change the status
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
sys.exit(code)
