"""`python -m vlmtune <command> ...`: the same as the `vlmtune` command (vlmtune/cli.py)."""

import sys

from vlmtune.cli import main

if __name__ == "__main__":
    sys.exit(main())
