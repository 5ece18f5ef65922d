"""Reading the user's files: one place that turns I/O and parse problems into one line."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from study.errors import DataError


def existing(setting: str, path: str) -> Path:
    """The file or folder a setting names; a missing one is refused naming the setting."""
    if not path:
        raise DataError(f"{setting} is not set; give {setting}=/path/to/file")
    p = Path(path).expanduser()
    if not p.exists():
        raise DataError(f"{setting}={path}: no such file or folder")
    return p


@contextlib.contextmanager
def reading(path: Path) -> Iterator[None]:
    """Parse errors inside the block become ``DataError`` naming the file."""
    try:
        yield
    except DataError:
        raise
    except (OSError, ValueError, KeyError, IndexError, TypeError) as e:
        detail = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DataError(f"{path}: cannot be read ({detail})") from e
