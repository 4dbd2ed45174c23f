"""``python -m svrecon``: see :mod:`svrecon.cli`."""

import sys

from .cli import main

sys.exit(main())
