"""``python -m visualizr_client``: the ``visualizr`` command line."""

import sys

from visualizr_client._cli import main

sys.exit(main())
