"""``python -m nbtrack``: the same as the ``nbtrack`` command."""

import sys

from .cli import main

sys.exit(main())
