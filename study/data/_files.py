"""Reading the user's files: one place that turns I/O and parse problems into one line."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

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


#: A CSV's first line (its header) ends within this many bytes, or the file is not a table
#: (everything on one line, a binary file): refused before pandas spends minutes and gigabytes.
MAX_FIRST_LINE = 1 << 20


def read_csv(path: Path, **kwargs: Any) -> Any:
    """``pandas.read_csv``, after a bounded look at the first line (inside :func:`reading`)."""
    with open(path, "rb") as f:
        head = f.read(MAX_FIRST_LINE + 1)
    if len(head) > MAX_FIRST_LINE and b"\n" not in head:
        raise DataError(
            f"{path}: its first line runs past 1 MB without a line break, so it is not a table "
            "of one header row and one row per record; check the file (one line? binary?)"
        )
    import pandas as pd

    return pd.read_csv(path, **kwargs)


def require_columns(path: Path, frame: Any, columns: Iterable[tuple[str, str]]) -> None:
    """Each ``(setting, column)`` names a column the table must have; the first missing one is
    refused naming the setting and the columns there are. A table of a header alone is refused
    as such (not as a column of the wrong type)."""
    if len(frame) == 0:
        raise DataError(f"{path}: no rows below the header")
    for setting, column in columns:
        if column not in frame.columns:
            raise DataError(
                f"{path}: no column {column!r} (data.{setting}); "
                f"columns: {', '.join(map(str, frame.columns))}"
            )
