"""`python -m mycli_magic.cli`: the `mycli` command without the console script on PATH."""

import sys

from .main import main

sys.exit(main())
