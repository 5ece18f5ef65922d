"""JapaneseVowels (UCI/UEA): 9 speakers, 12 LPC cepstrum channels, 7-29 frames per utterance.

Ships inside ``sktime``, so it loads offline. 270 train / 370 test utterances; the dataset's own
test split is kept as the test set and a stratified validation split is taken from train.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from omegaconf import II

from study.data._sequences import SequenceData, build_splits


@dataclass
class JapaneseVowelsConfig:
    _target_: str = "study.data.japanese_vowels.load"
    name: str = "japanese_vowels"
    val_fraction: float = 0.2
    seed: int = II("seed")


def _read(split: str) -> tuple[list[np.ndarray], np.ndarray]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from sktime.datasets import load_japanese_vowels

        X, y = load_japanese_vowels(split=split, return_X_y=True)
    seqs = [
        np.stack([X.iloc[i, c].to_numpy(dtype=np.float32) for c in range(X.shape[1])], axis=1)
        for i in range(len(X))
    ]
    return seqs, np.asarray(y)


def load(name: str = "japanese_vowels", val_fraction: float = 0.2, seed: int = 0) -> SequenceData:
    train_seqs, train_labels = _read("train")
    test_seqs, test_labels = _read("test")
    return build_splits(
        name, train_seqs, train_labels, test_seqs, test_labels, val_fraction=val_fraction, seed=seed
    )
