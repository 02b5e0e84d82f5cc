"""``python -m weightio ...`` is the ``weightio`` command."""

import sys

from .cli import main

sys.exit(main())
