"""What every ``data=`` option is: the seam's Protocol, and the fields the options share."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from omegaconf import II, MISSING

from study.data._sequences import CLASSIFICATION, SERIES_PARAMS


class DataOptions(Protocol):
    """A ``data=`` option: the loader Hydra instantiates (``_target_``) with these fields, and
    what the configuration checks need before any data is read."""

    _target_: str
    #: The study's name for the data (used in the default study name).
    name: str
    seed: int

    def task(self) -> str:
        """``classification`` or ``forecasting``: which metrics and checks apply."""
        ...

    def uses(self) -> tuple[str, ...]:
        """Search-space parameters beyond the shared ones that this data uses."""
        ...


@dataclass
class BaseOptions:
    """Fields every option has; a classification task that uses no extra parameter."""

    #: The loader (each option sets its own).
    _target_: str = MISSING
    name: str = MISSING
    #: Seeds the splits (and anything else drawn when the data is loaded).
    seed: int = II("seed")

    def task(self) -> str:
        return CLASSIFICATION

    def uses(self) -> tuple[str, ...]:
        return ()


@dataclass
class ClassificationOptions(BaseOptions):
    #: The share of the training examples (stratified, seeded) held out for validation.
    val_fraction: float = 0.1


@dataclass
class SeriesOptions(ClassificationOptions):
    """Numeric series to classify (``data=ucr``, ``data=series_files``)."""

    #: How each channel is scaled: ``global`` with the training split's mean and std, ``series``
    #: each series by its own (z-normalisation, shape only), ``series_stats`` by its own with
    #: three more channels each: its log amplitude, log scale and level; ``auto`` series_stats
    #: when the series' own scales span more than two orders of magnitude (global scaling would
    #: flatten the quiet ones), else global.
    scaling: str = "auto"

    def uses(self) -> tuple[str, ...]:
        return SERIES_PARAMS
