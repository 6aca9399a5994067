"""`python -m learn_cli` is the `learn` script."""

import sys

from learn_cli.cli import app

sys.exit(app())
