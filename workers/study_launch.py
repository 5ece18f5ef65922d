"""study-launch: start ``workers=N`` local worker processes on one study and wait for the budget."""

from __future__ import annotations

import sys

from study.cli import run
from study.launcher import launch


def main() -> None:
    sys.exit(run(launch, sys.argv[1:]))


if __name__ == "__main__":
    main()
