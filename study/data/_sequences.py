"""Sequences as padded tensors plus lengths; what every task's data hands the trainer.

A :class:`SequenceData` holds the train, validation and test splits of one dataset and knows its
task: which loss trains on it, which metrics score it, and which extra search-space parameters it
uses (a text dataset tunes its truncation length, a forecasting one its input window).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
from hydra.errors import InstantiationException
from hydra.utils import instantiate

from study.data._cache import cached
from study.errors import DataError

if TYPE_CHECKING:  # torch is imported where tensors are made: configs and status need none
    import torch

    from study.data._options import DataOptions

CLASSIFICATION = "classification"
#: Search-space parameters numeric series classification uses (the LSTM-FCN branch).
SERIES_PARAMS = ("fcn",)
FORECASTING = "forecasting"


@dataclass
class SequenceSet:
    """``x[i, :lengths[i]]`` is sequence i (zero padding after); ``y[i]`` its target.

    ``x`` is float (N, T, features) for numeric inputs and int64 (N, T) token ids for text;
    ``y`` is a class index, or for forecasting the flattened horizon in scaled units. ``level``
    (forecasting only) is what each window was made relative to, to get back to real units.
    """

    x: torch.Tensor
    lengths: torch.Tensor
    y: torch.Tensor
    level: torch.Tensor | None = None

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def to(self, device: torch.device | str) -> SequenceSet:
        # Lengths stay on the CPU: pack_padded_sequence wants them there.
        level = None if self.level is None else self.level.to(device)
        return SequenceSet(self.x.to(device), self.lengths, self.y.to(device), level)

    def subset(self, index: np.ndarray | torch.Tensor) -> SequenceSet:
        import torch

        idx = torch.as_tensor(index, dtype=torch.long)
        level = None if self.level is None else self.level[idx.to(self.level.device)]
        dev = idx.to(self.x.device)
        return SequenceSet(self.x[dev], self.lengths[idx], self.y[dev], level)


@dataclass
class SequenceData:
    """A classification dataset; :mod:`study.data.forecast` extends it for forecasting."""

    name: str
    train: SequenceSet
    val: SequenceSet
    test: SequenceSet
    #: Numeric channels per step (0 for token inputs).
    n_features: int
    classes: list[str]
    #: Token inputs: the vocabulary size, padding (0) and unknown (1) included.
    vocab_size: int = 0
    #: Token inputs: pretrained vectors, one row per vocabulary entry.
    pretrained: torch.Tensor | None = None
    #: Search-space parameters beyond the shared ones that this data uses.
    uses: tuple[str, ...] = ()
    #: Facts worth recording on the study (sizes, vocabulary, baselines).
    info: dict[str, Any] = field(default_factory=dict)
    #: One-line warnings about the data worth a user's attention (shown once, by the launcher).
    notes: list[str] = field(default_factory=list)

    task = CLASSIFICATION

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def n_outputs(self) -> int:
        return self.n_classes

    def loss(self, outputs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The training loss (mean over the batch)."""
        import torch.nn.functional as F

        return F.cross_entropy(outputs, y)

    def eval_loss(self, outputs: torch.Tensor, s: SequenceSet) -> float:
        """The loss a split is scored by (``val_loss``): the training loss, unless trials
        differ in what they train on (forecasting: their seasonal treatment)."""
        return float(self.loss(outputs, s.y).item())

    def score(self, outputs: torch.Tensor, s: SequenceSet) -> dict[str, float]:
        """Metrics of a whole split: accuracy and macro-F1."""
        pred = outputs.argmax(1)
        return {
            "accuracy": float((pred == s.y).double().mean().item()),
            "f1": macro_f1(pred, s.y, self.n_classes),
        }

    def ensemble_score(self, members: list[tuple[SequenceData, torch.Tensor]]) -> dict[str, float]:
        """Several models' outputs on the test split (each with the data view its trial used),
        scored together: the class probabilities averaged (a member listed twice counts twice)."""
        mean = self.averaged(members)
        return {
            "loss": self.combined_loss(mean, self.test),
            **self.score(mean.clamp_min(1e-12).log(), self.test),  # argmax of the mean
        }

    def answers(self, members: list[tuple[SequenceData, torch.Tensor]]) -> dict[str, Any]:
        """The test split's answers, small enough to keep on the study (the report draws them):
        the confusion matrix of the (averaged) class probabilities, a row per true class."""
        import torch

        k, y = self.n_classes, self.test.y.cpu()
        pred = self.averaged(members).argmax(1).cpu()
        counts = torch.bincount(y * k + pred, minlength=k * k).reshape(k, k)
        return {"classes": self.classes, "confusion": counts.tolist()}

    def combinable(self, outputs: torch.Tensor, s: SequenceSet) -> torch.Tensor:
        """A model's outputs on a split in the form members are averaged in: class
        probabilities (forecasts in the data's units, for forecasting)."""
        return outputs.softmax(1)

    def combined_loss(self, mean: torch.Tensor, s: SequenceSet) -> float:
        """The loss of averaged members on a split (``mean`` of :meth:`combinable`): the
        negative log-likelihood of the mean probabilities."""
        import torch.nn.functional as F

        return float(F.nll_loss(mean.clamp_min(1e-12).log(), s.y))

    def averaged(self, members: list[tuple[SequenceData, torch.Tensor]]) -> torch.Tensor:
        """The members' test outputs combined (:meth:`combinable`), averaged."""
        import torch

        return torch.stack([view.combinable(out, view.test) for view, out in members]).mean(0)

    def longest(self) -> int:
        """The most steps of a sequence the trials see (training and validation splits)."""
        return max(int(s.lengths.max()) for s in (self.train, self.val) if len(s))

    def dims(self) -> dict[str, int]:
        """What the model's shape depends on, besides the trial's parameters."""
        dims = {"n_features": self.n_features, "n_outputs": self.n_outputs}
        if self.vocab_size:
            dims["vocab_size"] = self.vocab_size
        if self.pretrained is not None:
            dims["embedding_dim"] = int(self.pretrained.shape[1])
        return dims

    def to(self, device: torch.device | str) -> SequenceData:
        """Training and validation splits on the device; the test split stays where it is."""
        return replace(self, train=self.train.to(device), val=self.val.to(device))

    def for_trial(self, params: dict[str, Any]) -> SequenceData:
        """The splits one trial trains on: text is cut to the trial's ``max_length``."""
        if "max_length" not in params:
            return self
        n = int(params["max_length"])

        def cut(s: SequenceSet) -> SequenceSet:
            return SequenceSet(s.x[:, :n], s.lengths.clamp(max=n), s.y, s.level)

        return replace(self, train=cut(self.train), val=cut(self.val), test=cut(self.test))


def macro_f1(pred: torch.Tensor, y: torch.Tensor, n_classes: int) -> float:
    import torch

    confusion = torch.bincount(y * n_classes + pred, minlength=n_classes * n_classes)
    confusion = confusion.reshape(n_classes, n_classes).double()
    tp = confusion.diag()
    precision = tp / confusion.sum(0).clamp(min=1)
    recall = tp / confusion.sum(1).clamp(min=1)
    f1 = 2 * precision * recall / (precision + recall).clamp(min=1e-12)
    present = confusion.sum(1) > 0  # classes absent from y do not count
    return float(f1[present].mean().item())


def pad(
    seqs: Sequence[np.ndarray],
    mean: np.ndarray | None = None,
    std: np.ndarray | None = None,
    stats: np.ndarray | None = None,
    steps: Sequence[np.ndarray] | None = None,
) -> torch.Tensor:
    """Sequences scaled by ``mean`` and ``std``, or without them each by its own (per channel),
    padded with zeros to the longest; ``steps`` (one array per sequence, as long as it) follow
    as more channels, and ``stats`` (one row per sequence) after them, as channels that hold
    each row's values over the sequence's steps."""
    import torch

    lengths = [len(s) for s in seqs]
    own = seqs[0].shape[1]
    more = 0 if steps is None else steps[0].shape[1]
    width = own + more + (0 if stats is None else stats.shape[1])
    x = np.zeros((len(seqs), max(lengths), width), dtype=np.float32)
    for i, s in enumerate(seqs):
        if mean is None or std is None:
            x[i, : len(s), :own] = (s - s.mean(axis=0)) / (s.std(axis=0) + 1e-8)
        else:
            x[i, : len(s), :own] = (s - mean) / std
        if steps is not None:
            x[i, : len(s), own : own + more] = steps[i]
        if stats is not None:
            x[i, : len(s), own + more :] = stats[i]
    return torch.from_numpy(x)


#: ``data.scaling``'s choices (:func:`resolve_scaling`).
SCALINGS = ("auto", "global", "series", "series_stats")

#: ``scaling=auto`` scales each series by its own when their scales span more than this factor.
SERIES_SCALE_SPREAD = 100.0


def resolve_scaling(source: str, scaling: str, seqs: Sequence[np.ndarray]) -> str:
    """``global``, ``series`` or ``series_stats`` for ``data.scaling`` on these (training)
    sequences.

    ``auto`` compares the series' own standard deviations: when the 95th percentile is more than
    :data:`SERIES_SCALE_SPREAD` times the 5th (PLAID's appliance currents span 0.001 to 45 A),
    scaling them all by one mean and std leaves the quiet ones flat at a constant, and a network
    sees nothing of their shape; each series is then z-normalised by its own statistics, as the
    UCR archive does for most of its sets (Dau et al. 2019), and what that removes goes in beside
    it as channels (:func:`log_amplitude`, :func:`series_statistics`): how loud a series is can
    be what tells its class (on PLAID, 1-NN DTW drops from 0.93 to 0.80 on z-normalised series,
    ``bench/dtw.py --znorm``). Sets that are already z-normalised (OSULeaf, ACSF1) or whose
    scale is the signal (BasicMotions' accelerations, spread 31) keep one global scaling.
    """
    if scaling not in SCALINGS:
        raise DataError(
            f"{source}: data.scaling={scaling!r} is not one of {', '.join(SCALINGS)}; e.g. auto"
        )
    if scaling != "auto":
        return scaling
    spread = np.array([float(s.std(axis=0).mean()) for s in seqs])
    low, high = np.percentile(spread, [5, 95])
    return "series_stats" if high > SERIES_SCALE_SPREAD * max(float(low), 1e-12) else "global"


def series_statistics(seqs: Sequence[np.ndarray]) -> np.ndarray:
    """What z-normalising a series removes, per channel: log of its standard deviation and
    asinh of its mean over that deviation (its level in its own units), one row per series.
    The scale enters as a logarithm, as DeepAR feeds each series' scale (Salinas et al. 2020)."""
    rows = []
    for s in seqs:
        std = s.std(axis=0) + 1e-8
        rows.append(np.concatenate([np.log(std), np.arcsinh(s.mean(axis=0) / std)]))
    return np.asarray(rows, dtype=np.float64)


def typical_scale(seqs: Sequence[np.ndarray]) -> np.ndarray:
    """Per channel, the median of the series' own standard deviations: the loudness at which
    :func:`log_amplitude` turns from linear to logarithmic."""
    return np.maximum(np.median([s.std(axis=0) for s in seqs], axis=0), 1e-8)


def log_amplitude(seqs: Sequence[np.ndarray], scale: np.ndarray) -> list[np.ndarray]:
    """Each series in its own units, compressed: asinh(x / ``scale``), linear for a series of
    typical loudness and logarithmic for one a thousand times louder, so that every series,
    from the quietest to the loudest, keeps its waveform in absolute terms (on PLAID the
    appliances' currents, 0.001 to 45 A)."""
    return [np.arcsinh(s / scale) for s in seqs]


def check_labels(source: str, labels: np.ndarray) -> list[str]:
    """The sorted classes; a dataset with fewer than two cannot be learned."""
    classes = sorted({str(c) for c in labels.tolist()})
    if len(classes) < 2:
        raise DataError(f"{source}: every example has the label {classes[:1]}; need two classes")
    return classes


def check_numeric(source: str, seqs: Sequence[np.ndarray]) -> None:
    if not seqs:
        raise DataError(f"{source}: no sequences found")
    for i, s in enumerate(seqs):
        if len(s) == 0:
            raise DataError(f"{source}: sequence {i} is empty")
        if not np.isfinite(s).all():
            raise DataError(f"{source}: sequence {i} has NaN or infinite values; fill or drop them")


def split_indices(
    source: str, labels: np.ndarray, fractions: Sequence[float], seed: int
) -> list[np.ndarray]:
    """Stratified, seeded index splits; the last part takes what the others leave.

    Cached per machine (:mod:`study.data._cache`): the launcher splits before its workers
    start, and they read the same parts without importing scikit-learn."""
    text = "\n".join(map(str, np.asarray(labels).tolist()))
    key = f"split v1\n{list(fractions)!r}\n{seed}\n{np.asarray(labels).dtype}\n{text}".encode()

    def split() -> dict[str, np.ndarray]:
        return {str(i): part for i, part in enumerate(_split(source, labels, fractions, seed))}

    parts = cached("split", key, split)
    return [parts[str(i)] for i in range(len(fractions) + 1)]


def _split(
    source: str, labels: np.ndarray, fractions: Sequence[float], seed: int
) -> list[np.ndarray]:
    from sklearn.model_selection import train_test_split  # 140 MB and a second: only here

    rest = np.arange(len(labels))
    parts = []
    remaining = 1.0
    for share in fractions:
        try:
            take, rest = train_test_split(
                rest,
                train_size=share / remaining,
                stratify=labels[rest],
                random_state=seed,
            )
        except ValueError as e:
            raise DataError(
                f"{source}: {len(labels)} examples are too few for a stratified split ({e})"
            ) from e
        parts.append(np.sort(take))
        remaining -= share
    return [*parts, np.sort(rest)]


def build_splits(
    name: str,
    train_seqs: list[np.ndarray],
    train_labels: np.ndarray,
    test_seqs: list[np.ndarray] | None,
    test_labels: np.ndarray | None,
    *,
    val_fraction: float,
    seed: int,
    test_fraction: float = 0.1,
    source: str = "",
    scaling: str = "auto",
) -> SequenceData:
    """Numeric sequence classification: stratified splits, scaled with train statistics only
    (``scaling`` global), or each series by its own (``series``; :func:`resolve_scaling`).

    Without a test split of the dataset's own, ``test_fraction`` of the examples become one.
    """
    if not 0.0 < val_fraction < 1.0:
        raise DataError(f"data.val_fraction={val_fraction} must be between 0 and 1; e.g. 0.2")
    source = source or name
    check_numeric(source, train_seqs)
    classes = check_labels(source, train_labels)
    index = {c: i for i, c in enumerate(classes)}
    y_all = np.array([index[str(c)] for c in train_labels])
    if test_seqs is None or test_labels is None:
        test_idx, va, tr = split_indices(source, y_all, [test_fraction, val_fraction], seed)
        test_seqs, y_test = [train_seqs[i] for i in test_idx], y_all[test_idx]
    else:
        check_numeric(f"{source} (test)", test_seqs)
        unseen = sorted({str(c) for c in test_labels.tolist()} - set(classes))
        if unseen:
            raise DataError(f"{source}: test labels {unseen} never occur in train")
        y_test = np.array([index[str(c)] for c in test_labels])
        tr, va = split_indices(source, y_all, [1.0 - val_fraction], seed)
    if len({len(s[0]) for s in [*train_seqs, *test_seqs]}) > 1:
        raise DataError(f"{source}: sequences differ in their number of channels")
    training = [train_seqs[i] for i in tr]
    scaling = resolve_scaling(source, scaling, training)
    mean = std = None  # series: each scaled by its own statistics in pad()
    if scaling == "global":
        fit = np.concatenate(training)
        mean, std = fit.mean(axis=0), fit.std(axis=0) + 1e-8
    stats_mean = stats_std = None  # series_stats: those statistics scaled on train only
    loudness = amp_mean = amp_std = None  # ... and the log amplitude too
    if scaling == "series_stats":
        fit_stats = series_statistics(training)
        stats_mean, stats_std = fit_stats.mean(axis=0), fit_stats.std(axis=0) + 1e-8
        loudness = typical_scale(training)
        fit_amp = np.concatenate(log_amplitude(training, loudness))
        amp_mean, amp_std = fit_amp.mean(axis=0), fit_amp.std(axis=0) + 1e-8

    import torch

    def subset(seqs: list[np.ndarray], labels: np.ndarray) -> SequenceSet:
        lengths = torch.tensor([len(s) for s in seqs], dtype=torch.long)
        stats = steps = None
        if stats_mean is not None:
            stats = (series_statistics(seqs) - stats_mean) / stats_std
        if loudness is not None:
            steps = [(a - amp_mean) / amp_std for a in log_amplitude(seqs, loudness)]
        x = pad(seqs, mean, std, stats, steps)
        return SequenceSet(x, lengths, torch.from_numpy(labels.astype(np.int64)))

    train = subset(training, y_all[tr])
    return SequenceData(
        name=name,
        train=train,
        val=subset([train_seqs[i] for i in va], y_all[va]),
        test=subset(test_seqs, y_test),
        n_features=int(train.x.shape[2]),  # with series_stats, four per channel
        classes=classes,
        uses=SERIES_PARAMS,
        info={"train": len(tr), "val": len(va), "test": len(y_test), "scaling": scaling},
    )


def load_data(cfg: DataOptions) -> SequenceData:
    """Build the configured dataset (its ``_target_`` is a loader function)."""
    try:
        data: SequenceData = instantiate(cfg)
    except InstantiationException as e:
        if isinstance(e.__cause__, DataError):  # Hydra wraps what the loader raised
            raise e.__cause__ from None
        raise
    return data
