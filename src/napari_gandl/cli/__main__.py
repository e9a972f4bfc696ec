"""``python -m napari_gandl.cli ...`` (what ``torchrun`` launches): the ``gandl`` command."""

import sys

from napari_gandl.cli import main

sys.exit(main())
