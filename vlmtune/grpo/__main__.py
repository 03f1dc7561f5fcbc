"""python -m vlmtune.grpo (e.g. under torchrun): `vlmtune grpo` with the CLI's clear one-line errors."""

import sys

from vlmtune.apps.cli import main as cli_main

sys.exit(cli_main(["grpo", *sys.argv[1:]]))
