"""BENCHMARKS.md: each benchmark owns one block between its start and end markers."""

from __future__ import annotations

from pathlib import Path

PATH = Path(__file__).resolve().parents[1] / "BENCHMARKS.md"


def write_block(key: str, body: str) -> None:
    """Replace the block ``key`` (or append it) with ``body``."""
    text = PATH.read_text() if PATH.exists() else "# Benchmarks\n"
    start, end = f"<!-- {key}:start -->", f"<!-- {key}:end -->"
    block = f"{start}\n{body}\n{end}"
    if start in text:
        text = text[: text.index(start)] + block + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    PATH.write_text(text)
