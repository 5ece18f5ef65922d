"""Arrays computed once per machine and kept in the user's cache (``$XDG_CACHE_HOME/caviar-study``,
else ``~/.cache``) as ``.npz`` files named by the hash of what they were computed from.

What is cached is what would otherwise make every worker import a heavy library only to get
the same answer: a parsed ``.ts`` file (sktime, with pandas and SciPy) and the stratified splits
(scikit-learn, ~140 MB of a worker's memory). The launcher computes them before its workers
start, so the workers find them. A damaged entry is computed again; an unwritable cache is
skipped.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "caviar-study"


def cached(
    kind: str, key: bytes, compute: Callable[[], dict[str, np.ndarray]]
) -> dict[str, np.ndarray]:
    """``compute()``'s arrays, from ``<cache>/<kind>-<sha256(key)>.npz`` when it exists."""
    file = cache_dir() / f"{kind}-{hashlib.sha256(key).hexdigest()}.npz"
    if file.is_file():
        try:
            with np.load(file, allow_pickle=False) as f:
                return {name: f[name] for name in f.files}
        except (OSError, ValueError, KeyError) as e:  # a damaged entry: compute again
            log.debug("ignoring the cached %s (%s)", file, e)
    arrays = compute()
    _store(file, arrays)
    return arrays


def _store(file: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write atomically (concurrent workers may compute the same entry); skip what cannot be."""
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=file.parent, prefix=".tmp-", suffix=".npz")
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)  # type: ignore[arg-type]
        os.replace(tmp, file)
    except OSError as e:
        log.debug("not caching %s (%s)", file, e)
