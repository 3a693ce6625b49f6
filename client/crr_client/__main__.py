"""``python -m crr_client``: the same as the ``crr`` console script."""

import sys

from crr_client.cli import main

sys.exit(main())
