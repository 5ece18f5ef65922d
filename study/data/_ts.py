"""The sktime ``.ts`` format (UCR/UEA archives): multivariate, variable-length, labelled.

sktime parses it; importing sktime takes seconds (it brings scikit-learn, SciPy and pandas),
and every worker, launcher and ``study test`` reads its data, so a parsed file is kept in the
user's cache (:mod:`study.data._cache`), named by the hash of the file's content: a changed file
is parsed again.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from study.data._cache import cached
from study.data._files import reading

#: Part of every cache key: a new layout of the cached arrays gets new names.
_FORMAT = b"caviar-study ts v1\n"


def read_ts(path: Path) -> tuple[list[np.ndarray], np.ndarray]:
    """Sequences as (length, channels) float32 arrays, and their labels (strings)."""
    with reading(path):
        content = path.read_bytes()
    arrays = cached("ts", _FORMAT + content, lambda: _pack(*_parse(path)))
    values, lengths, labels = arrays["values"], arrays["lengths"], arrays["labels"]
    ends = np.cumsum(lengths)
    return [values[end - n : end] for n, end in zip(lengths, ends, strict=True)], labels


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


def _pack(seqs: list[np.ndarray], labels: np.ndarray) -> dict[str, np.ndarray]:
    return {
        "values": np.concatenate(seqs),
        "lengths": np.array([len(s) for s in seqs], dtype=np.int64),
        "labels": labels,
    }
