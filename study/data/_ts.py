"""The sktime ``.ts`` format (UCR/UEA archives): multivariate, variable-length, labelled.

sktime parses it; importing sktime takes seconds (it brings scikit-learn, SciPy and pandas),
and every worker, launcher and ``study test`` reads its data, so a parsed file is kept as a
``.npz`` in the user's cache (``$XDG_CACHE_HOME/caviar-study``, else ``~/.cache``), named by
the hash of the file's content: a changed file is parsed again, an unwritable cache is skipped.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np

from study.data._files import reading

log = logging.getLogger(__name__)

#: Part of every cache key: a new layout of the cached arrays gets new names.
_FORMAT = b"caviar-study ts v1\n"


def read_ts(path: Path) -> tuple[list[np.ndarray], np.ndarray]:
    """Sequences as (length, channels) float32 arrays, and their labels (strings)."""
    with reading(path):
        content = path.read_bytes()
    cached = cache_dir() / f"ts-{hashlib.sha256(_FORMAT + content).hexdigest()}.npz"
    if cached.is_file():
        try:
            return _load(cached)
        except (OSError, ValueError, KeyError) as e:  # a damaged entry: parse again
            log.debug("ignoring the cached %s (%s)", cached, e)
    seqs, labels = _parse(path)
    _store(cached, seqs, labels)
    return seqs, labels


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "caviar-study"


def _parse(path: Path) -> tuple[list[np.ndarray], np.ndarray]:
    with warnings.catch_warnings(), reading(path):
        warnings.simplefilter("ignore")
        from sktime.datasets import load_from_tsfile

        X, y = load_from_tsfile(str(path), return_data_type="nested_univ")
        seqs = []
        for i in range(len(X)):
            channels = [np.asarray(X.iloc[i, c], dtype=np.float32) for c in range(X.shape[1])]
            n = min(len(c) for c in channels)
            seqs.append(np.stack([c[:n] for c in channels], axis=1))
    return seqs, np.asarray(y).astype(str)


def _load(file: Path) -> tuple[list[np.ndarray], np.ndarray]:
    with np.load(file, allow_pickle=False) as f:
        values, lengths, labels = f["values"], f["lengths"], f["labels"]
    ends = np.cumsum(lengths)
    return [values[end - n : end] for n, end in zip(lengths, ends, strict=True)], labels


def _store(file: Path, seqs: list[np.ndarray], labels: np.ndarray) -> None:
    """Write atomically (concurrent workers may parse the same file); skip what cannot be."""
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=file.parent, prefix=".tmp-", suffix=".npz")
        with os.fdopen(fd, "wb") as f:
            np.savez(
                f,
                values=np.concatenate(seqs),
                lengths=np.array([len(s) for s in seqs], dtype=np.int64),
                labels=labels,
            )
        os.replace(tmp, file)
    except OSError as e:
        log.debug("not caching %s (%s)", file, e)
