"""`python -m vlmtune <command> ...`: the same as the `vlmtune` command (vlmtune/apps/cli.py)."""

import sys

from vlmtune.apps.cli import main

if __name__ == "__main__":
    sys.exit(main())
