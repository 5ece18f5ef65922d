"""Datasets (``conf/data/``): each option loads a real dataset into train/validation/test splits.

The test split is only read by :mod:`study.testset`, once per study.
"""

from __future__ import annotations

from study.data._sequences import SequenceData, SequenceSet, build_splits, load_data

__all__ = ["SequenceData", "SequenceSet", "build_splits", "load_data"]
