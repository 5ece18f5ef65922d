"""The sktime ``.ts`` format (UCR/UEA archives): multivariate, variable-length, labelled."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from study.data._files import reading


def read_ts(path: Path) -> tuple[list[np.ndarray], np.ndarray]:
    """Sequences as (length, channels) float arrays, and their labels."""
    with warnings.catch_warnings(), reading(path):
        warnings.simplefilter("ignore")
        from sktime.datasets import load_from_tsfile

        X, y = load_from_tsfile(str(path), return_data_type="nested_univ")
        seqs = []
        for i in range(len(X)):
            channels = [np.asarray(X.iloc[i, c], dtype=np.float32) for c in range(X.shape[1])]
            n = min(len(c) for c in channels)
            seqs.append(np.stack([c[:n] for c in channels], axis=1))
    return seqs, np.asarray(y)
