"""``python -m blueprint.cli``: the ``blueprint`` command."""

import sys

from blueprint.cli import main

sys.exit(main())
