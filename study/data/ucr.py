"""UCR/UEA time-series classification sets that ship inside ``sktime`` (they load offline).

JapaneseVowels (the default study's data), ItalyPowerDemand, GunPoint, ArrowHead, BasicMotions,
OSULeaf, ... by name: ``data=ucr data.dataset=ItalyPowerDemand``. The dataset's own test split
is the test set; a stratified validation split is carved from its training split.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path

from study.data._options import SeriesOptions
from study.data._sequences import SequenceData, build_splits
from study.data._ts import read_ts
from study.errors import DataError


@dataclass
class UCRConfig(SeriesOptions):
    _target_: str = "study.data.ucr.load"
    #: The archive's name for the set, e.g. JapaneseVowels.
    dataset: str = "JapaneseVowels"
    name: str = "${.dataset}"
    val_fraction: float = 0.2


def _bundled() -> dict[str, Path]:
    spec = find_spec("sktime")  # not "sktime.datasets": that would import sktime (seconds)
    assert spec is not None and spec.origin is not None
    root = Path(spec.origin).parent / "datasets" / "data"
    return {p.name: p for p in sorted(root.iterdir()) if (p / f"{p.name}_TRAIN.ts").exists()}


def bundled_names() -> list[str]:
    """The classification sets sktime ships (others would need a download)."""
    return [n for n, p in _bundled().items() if "@classlabel true" in _header(p, n)]


def _header(folder: Path, name: str) -> str:
    with open(folder / f"{name}_TRAIN.ts", encoding="utf-8", errors="replace") as f:
        return "".join(next(f, "") for _ in range(40)).lower()


def bundled_folder(dataset: str) -> Path:
    """The folder of a classification set sktime ships; any other name is refused with the list."""
    names = bundled_names()
    if dataset not in names:
        raise DataError(
            f"data.dataset={dataset!r} is not bundled with sktime (no downloads here); "
            f"choose one of: {', '.join(names)}, or use data=series_files for your own .ts files"
        )
    return _bundled()[dataset]


def load(
    dataset: str, name: str, val_fraction: float = 0.2, seed: int = 0, scaling: str = "auto"
) -> SequenceData:
    folder = bundled_folder(dataset)
    train_seqs, train_labels = read_ts(folder / f"{dataset}_TRAIN.ts")
    test_seqs, test_labels = read_ts(folder / f"{dataset}_TEST.ts")
    return build_splits(
        name,
        train_seqs,
        train_labels,
        test_seqs,
        test_labels,
        val_fraction=val_fraction,
        seed=seed,
        scaling=scaling,
    )
