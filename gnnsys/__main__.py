"""``python -m gnnsys``: the ``gnnsys`` command line (``gnnsys.cli``)."""

import sys

from gnnsys.cli import main

sys.exit(main())
