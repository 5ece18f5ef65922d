"""Datasets (``conf/data/``): each option loads real data into train/validation/test splits.

Three tasks: numeric sequence classification (:mod:`.ucr`, :mod:`.series_files`), text
classification (:mod:`.text`) and forecasting (:mod:`.forecast`). The test split is only read by
:mod:`study.testset`, once per study.
"""

from __future__ import annotations

from study.data._options import DataOptions
from study.data._sequences import (
    CLASSIFICATION,
    FORECASTING,
    SequenceData,
    SequenceSet,
    build_splits,
    load_data,
)

__all__ = [
    "CLASSIFICATION",
    "DataOptions",
    "FORECASTING",
    "SequenceData",
    "SequenceSet",
    "build_splits",
    "load_data",
]
