"""python -m vlmtune.dpo (e.g. under torchrun): `vlmtune dpo` with the CLI's clear one-line errors."""

import sys

from vlmtune.apps.cli import main as cli_main

sys.exit(cli_main(["dpo", *sys.argv[1:]]))
