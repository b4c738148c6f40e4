"""`python -m bea.cli ...`: the `bea` script."""

import sys

from ._main import main

sys.exit(main())
