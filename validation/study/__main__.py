"""``python -m validation.study``: the same as ``python -m validation study``."""

import sys

from .cli import main

sys.exit(main())
