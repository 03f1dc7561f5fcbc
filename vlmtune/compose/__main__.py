"""python -m vlmtune.compose: `vlmtune compose` with the CLI's clear one-line errors."""

import sys

from vlmtune.apps.cli import main as cli_main

sys.exit(cli_main(["compose", *sys.argv[1:]]))
