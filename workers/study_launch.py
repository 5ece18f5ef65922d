"""study-launch: start ``workers=N`` local worker processes on one study and wait for the budget."""

from __future__ import annotations

import sys

from study.cli import run


def main() -> None:
    sys.exit(run("study.launcher:launch", sys.argv[1:], prog="study-launch"))


if __name__ == "__main__":
    main()
