"""The model and the training loop: packing, scaling on train only, metrics."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from sklearn.metrics import f1_score

from study._logging import Progress
from study.data import build_splits
from study.data._sequences import SequenceData, SequenceSet, macro_f1
from study.models import SequenceModel, fit_ratios, nb_ratios, resolve_stem
from study.training import batches, evaluate, schedule_lr, train_epoch


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("pooling", ["last", "max", "mean"])
def test_padding_does_not_change_the_prediction(
    cell: str, bidirectional: bool, pooling: str
) -> None:
    torch.manual_seed(0)
    model = SequenceModel(
        4, 3, cell, 8, num_layers=2, bidirectional=bidirectional, pooling=pooling
    ).eval()
    seq = torch.randn(1, 5, 4)
    padded = torch.cat([seq, torch.full((1, 7, 4), 99.0)], dim=1)
    length = torch.tensor([5])
    assert torch.allclose(model(seq, length), model(padded, length), atol=1e-6)
    # In a batch beside a longer sequence, the short one's padding steps stay out of the pool.
    longer = torch.randn(1, 12, 4)
    batch = model(torch.cat([padded, longer]), torch.tensor([5, 12]))
    assert torch.allclose(batch[0], model(seq, length)[0], atol=1e-5)
    assert torch.allclose(batch[1], model(longer, torch.tensor([12]))[0], atol=1e-5)


def _toy(n: int, rng: np.random.Generator) -> tuple[list[np.ndarray], np.ndarray]:
    labels = rng.integers(0, 2, n)
    seqs = [rng.normal(loc=3.0 * y + 10, size=(rng.integers(3, 9), 2)) for y in labels]
    return seqs, labels.astype(str)


def test_scaling_uses_training_statistics_only() -> None:
    rng = np.random.default_rng(0)
    train, ytrain = _toy(80, rng)
    test = [s + 1000.0 for s in _toy(40, rng)[0]]  # a shifted test set must stay shifted
    data = build_splits("toy", train, ytrain, test, ytrain[:40], val_fraction=0.25, seed=0)
    real = [data.train.x[i, : data.train.lengths[i]] for i in range(len(data.train))]
    assert abs(float(torch.cat(real).mean())) < 1e-4
    assert float(data.test.x[0, 0].mean()) > 100
    assert len(data.train) == 60 and len(data.val) == 20


def test_a_learnable_task_is_learned() -> None:
    rng = np.random.default_rng(1)
    seqs, labels = _toy(200, rng)
    data = build_splits("toy", seqs, labels, seqs[:50], labels[:50], val_fraction=0.2, seed=0)
    torch.manual_seed(0)
    model = SequenceModel(2, 2, "gru", 16)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    gen = torch.Generator().manual_seed(0)
    for _ in range(15):
        train_epoch(model, opt, data, 32, 1.0, gen)
    scores = evaluate(model, data, data.val)
    assert scores["accuracy"] > 0.9 and scores["loss"] < 0.3


def test_macro_f1_matches_scikit_learn() -> None:
    rng = np.random.default_rng(2)
    y, pred = rng.integers(0, 4, 200), rng.integers(0, 4, 200)
    ours = macro_f1(torch.from_numpy(pred), torch.from_numpy(y), 4)
    assert ours == pytest.approx(f1_score(y, pred, average="macro"))


def test_training_batches_cover_each_sequence_once_bucketed_by_length() -> None:
    """An epoch sees every training sequence exactly once, in batches of similar lengths
    (fewer recurrent steps), in an order that changes from epoch to epoch."""
    n, longest = 400, 60
    lengths = torch.randint(1, longest + 1, (n,), generator=torch.Generator().manual_seed(1))
    x = torch.zeros(n, longest, 1)
    for i, k in enumerate(lengths):
        x[i, :k, 0] = i + 1  # each sequence carries its own index
    data = SequenceSet(x, lengths, torch.arange(n))
    gen = torch.Generator().manual_seed(0)
    epochs = [list(batches(data, 32, gen)) for _ in range(2)]
    for epoch in epochs:
        seen = torch.cat([y for _, _, y in epoch])
        assert sorted(seen.tolist()) == list(range(n))
        for xb, lb, yb in epoch:
            assert xb.shape[1] == int(lb.max())  # trimmed to the batch's longest
            assert torch.equal(xb[torch.arange(len(yb)), lb - 1, 0], yb.float() + 1)
    steps = sum(int(lb.max()) for _, lb, _ in epochs[0])
    unbucketed = sum(longest for _ in epochs[0])  # random batches of 32 nearly all reach 60
    assert steps < 0.7 * unbucketed
    assert [y.tolist() for _, _, y in epochs[0]] != [y.tolist() for _, _, y in epochs[1]]


# --- long sequences: the convolutional stem ----------------------------------------------------


def test_auto_gives_long_data_a_stem_that_leaves_at_most_stem_steps() -> None:
    base = {"stem": "auto", "stem_steps": 128}
    assert resolve_stem(base, 29) == {**base, "stem": "none", "stem_reduction": 1}
    assert resolve_stem(base, 1460) == {**base, "stem": "conv", "stem_reduction": 16}  # 92 steps
    assert resolve_stem(base, 427)["stem_reduction"] == 4  # 107 steps
    assert resolve_stem({**base, "stem_steps": 64}, 427)["stem_reduction"] == 8
    assert resolve_stem({**base, "stem": "none"}, 1460)["stem_reduction"] == 1
    assert resolve_stem({**base, "stem": "conv"}, 29)["stem_reduction"] == 1  # features only
    assert resolve_stem({"hidden_size": 8}, 1460) == {"hidden_size": 8}  # a trial from before


@pytest.mark.parametrize("reduction", [1, 2, 4, 8, 16])
def test_the_stem_divides_the_length_and_keeps_zero_padding_out(reduction: int) -> None:
    torch.manual_seed(0)
    model = SequenceModel(
        2, 3, "gru", 8, stem="conv", stem_reduction=reduction, pooling="mean"
    ).eval()
    assert model.stem is not None
    shorter, lengths = model.stem(torch.zeros(1, 37, 2), torch.tensor([37]))
    assert shorter.shape[1] == -(-37 // reduction) == int(lengths[0])
    seq = torch.randn(1, 37, 2)
    alone = model(seq, torch.tensor([37]))
    # Padding is zeros in every batch; beside a longer sequence the short one scores the same.
    longer = torch.randn(1, 90, 2)
    padded = torch.cat([seq, torch.zeros(1, 53, 2)], dim=1)
    batch = model(torch.cat([padded, longer]), torch.tensor([37, 90]))
    assert torch.allclose(batch[0], alone[0], atol=1e-5)


def test_a_long_learnable_task_is_learned_through_the_stem() -> None:
    """800-step series whose class is a burst somewhere in the middle: the stem (length / 8)
    lets a small GRU learn it in a few epochs."""
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, 160)
    seqs = []
    for y in labels:
        s = rng.normal(size=(int(rng.integers(600, 800)), 1))
        start = int(rng.integers(100, 400))
        s[start : start + 40, 0] += 3.0 if y else -3.0
        seqs.append(s)
    data = build_splits("long", seqs, labels.astype(str), seqs[:40], labels[:40].astype(str),
                        val_fraction=0.25, seed=0)  # fmt: skip
    params = resolve_stem({"stem": "auto", "stem_steps": 100}, data.longest())
    assert params["stem_reduction"] == 8
    torch.manual_seed(0)
    model = SequenceModel(1, 2, "gru", 16, pooling="max", stem="conv", stem_reduction=8)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    gen = torch.Generator().manual_seed(0)
    for _ in range(8):
        train_epoch(model, opt, data, 16, 1.0, gen)
    assert evaluate(model, data, data.val)["accuracy"] > 0.9


def test_the_fcn_branch_keeps_padding_out() -> None:
    torch.manual_seed(0)
    model = SequenceModel(4, 3, "lstm", 8, pooling="mean", fcn=True).eval()
    seq = torch.randn(1, 5, 4)
    alone = model(seq, torch.tensor([5]))
    padded = torch.cat([seq, torch.full((1, 7, 4), 99.0)], dim=1)
    batch = model(torch.cat([padded, torch.randn(1, 12, 4)]), torch.tensor([5, 12]))
    assert torch.allclose(batch[0], alone[0], atol=1e-5)


def test_the_fcn_branch_learns_a_local_shape_the_recurrence_alone_misses() -> None:
    """Series whose class is the direction of one short wiggle somewhere in the noise: the
    convolutional branch (LSTM-FCN) finds it in two epochs, a small LSTM alone does not."""
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 2, 200)
    wiggle = np.array([0, 2, 4, 2, 0, -2, -4, -2, 0.0])
    seqs = []
    for y in labels:
        s = rng.normal(scale=0.5, size=(int(rng.integers(40, 80)), 1))
        start = int(rng.integers(0, len(s) - 9))
        s[start : start + 9, 0] += wiggle if y else -wiggle
        seqs.append(s)
    data = build_splits("wiggle", seqs, labels.astype(str), seqs[:40], labels[:40].astype(str),
                        val_fraction=0.25, seed=0)  # fmt: skip
    accuracy = {}
    for fcn in (True, False):
        torch.manual_seed(0)
        model = SequenceModel(1, 2, "lstm", 16, pooling="mean", fcn=fcn)
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        gen = torch.Generator().manual_seed(0)
        for _ in range(2):
            train_epoch(model, opt, data, 16, 1.0, gen)
        accuracy[fcn] = evaluate(model, data, data.val)["accuracy"]
    assert accuracy[True] > 0.9 and accuracy[False] < 0.75, accuracy


def test_progress_lines_come_at_most_once_per_interval() -> None:
    now = [0.0]
    progress = Progress(30, clock=lambda: now[0])
    seen = []
    for t in (5, 29, 31, 40, 62, 200):
        now[0] = t
        seen.append(progress.due())
    assert seen == [False, False, True, False, True, True]


def test_a_cosine_schedule_anneals_the_rate_by_the_epoch_alone() -> None:
    """cosine: the full rate at epoch 0, half at mid-run, near none at the last epoch, whatever
    came before (a resumed trial and a retrained final model follow the same rates); constant,
    and a trial from before the schedule existed, keep the rate."""
    model = SequenceModel(2, 2, "gru", 4)
    opt = torch.optim.Adam(model.parameters(), lr=1.0)
    cosine = {"lr": 0.01, "lr_schedule": "cosine"}
    rates = [schedule_lr(opt, cosine, e, 10) for e in (9, 0, 5, 9)]
    assert rates[0] == rates[3] == pytest.approx(0.01 * (1 + np.cos(0.9 * np.pi)) / 2)
    assert rates[1:3] == [pytest.approx(0.01), pytest.approx(0.005)]
    assert rates[0] < 0.0003 and opt.param_groups[0]["lr"] == rates[3]
    assert schedule_lr(opt, {"lr": 0.01, "lr_schedule": "constant"}, 9, 10) == 0.01
    assert schedule_lr(opt, {"lr": 0.01}, 9, 10) == 0.01 == opt.param_groups[0]["lr"]


def test_retraining_before_the_test_says_how_it_goes(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Retraining can take as long as a trial: it logs its epochs (here every one, with the
    interval at 0 s; 30 s by default), never the last, which the test line follows."""
    import study._logging
    from study.config import load_config
    from study.protocol import retrain

    monkeypatch.setattr(study._logging, "PROGRESS_SECONDS", 0.0)
    rng = np.random.default_rng(2)
    seqs, labels = _toy(60, rng)
    data = build_splits("toy", seqs, labels, seqs[:20], labels[:20], val_fraction=0.2, seed=0)
    params = {
        "cell": "gru", "hidden_size": 8, "num_layers": 1, "bidirectional": False,
        "optimizer": "adam", "lr": 1e-2, "weight_decay": 0.0, "batch_size": 16, "clip_norm": 1.0,
    }  # fmt: skip
    with caplog.at_level("INFO", logger="study.protocol"):
        retrain(load_config([]).model, data, params, 3, False, 0, torch.device("cpu"), 3)
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0] == "retraining on 48 examples for 3 epochs"
    assert [x.split(",")[0] for x in lines[1:]] == [
        "retraining: epoch 1 of 3", "retraining: epoch 2 of 3",
    ]  # fmt: skip


def _tiny_text_model(data: SequenceData, epochs: int, **part: Any) -> tuple[SequenceModel, float]:
    """An 8-unit LSTM on token ids, trained as a trial trains it (its naive Bayes ratios, if it
    has them, counted first): the model and its validation accuracy."""
    torch.manual_seed(0)
    model = SequenceModel(0, 2, "lstm", 8, vocab_size=data.vocab_size, embedding_dim=8,
                          pooling="max", **part)  # fmt: skip
    fit_ratios(model, data.train)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    gen = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        train_epoch(model, opt, data, 16, 1.0, gen)
    return model, evaluate(model, data, data.val)["accuracy"]


def test_naive_bayes_ratios_hand_a_small_text_set_its_sentiment_words() -> None:
    """200 texts of eight noise words and one of twenty sentiment words: three epochs are too
    few for embeddings learnt from nothing, not with the ratios beside them (NBSVM's log-count
    ratios, Wang & Manning 2012). The ratios are the training split's, saved with the model."""
    rng = np.random.default_rng(0)
    vocab = 2 + 50 + 20  # padding, unknown, noise words, then 10 positive and 10 negative

    def texts(n: int) -> SequenceSet:
        labels = rng.integers(0, 2, n)
        x = torch.from_numpy(rng.integers(2, 52, (n, 9)))
        sentiment = 52 + 10 * (1 - labels) + rng.integers(0, 10, n)
        x[torch.arange(n), torch.from_numpy(rng.integers(0, 9, n))] = torch.from_numpy(sentiment)
        return SequenceSet(x, torch.full((n,), 9), torch.from_numpy(labels))

    data = SequenceData("words", texts(200), texts(200), texts(10), 0, ["neg", "pos"],
                        vocab_size=vocab)  # fmt: skip
    accuracy = {}
    for ratios in (True, False):
        model, accuracy[ratios] = _tiny_text_model(data, 3, nb_ratios=ratios)
        if ratios:
            assert torch.equal(model.state_dict()["ratios"], nb_ratios(data.train, vocab, 2))
    assert accuracy[True] > 0.9 and accuracy[False] < 0.75, accuracy


def test_the_ngram_part_learns_a_word_order_that_a_bag_of_words_cannot_see() -> None:
    """Each text holds words 52 and 53 side by side among noise words: in that order for one
    class, the other way round for the other. Every text holds the same words, so only the
    word pair tells the classes apart: the n-gram part's hashed pairs learn it in two epochs,
    a small recurrence learnt from nothing does not yet."""
    rng = np.random.default_rng(0)
    vocab = 2 + 50 + 2

    def texts(n: int) -> SequenceSet:
        labels = rng.integers(0, 2, n)
        x = torch.from_numpy(rng.integers(2, 52, (n, 9)))
        at = torch.from_numpy(rng.integers(0, 8, n))
        rows = torch.arange(n)
        first = torch.from_numpy(np.where(labels == 1, 52, 53))
        x[rows, at], x[rows, at + 1] = first, 105 - first
        return SequenceSet(x, torch.full((n,), 9), torch.from_numpy(labels))

    data = SequenceData("pairs", texts(300), texts(200), texts(10), 0, ["ba", "ab"],
                        vocab_size=vocab)  # fmt: skip
    accuracy = {ngrams: _tiny_text_model(data, 2, ngrams=ngrams)[1] for ngrams in (True, False)}
    assert accuracy[True] > 0.9 and accuracy[False] < 0.75, accuracy


def test_the_ngram_part_reads_only_each_texts_own_words_and_pairs() -> None:
    from study.models import NgramLinear

    part = NgramLinear(10, 2)
    ids = part.ids(torch.tensor([[2, 3, 4], [5, 6, 0]]), torch.tensor([3, 2]))
    buckets = NgramLinear.PAIR_BUCKETS
    pair = lambda a, b: (a * 1_000_003 + b) % buckets + 10  # noqa: E731
    assert ids.tolist() == [[2, 3, 4, pair(2, 3), pair(3, 4)], [5, 6, 0, pair(5, 6), 0]]
    assert torch.equal(part(torch.tensor([[2, 3, 4]]), torch.tensor([3])), torch.zeros(1, 2))
    with pytest.raises(ValueError, match="ngrams needs token inputs"):
        SequenceModel(3, 2, ngrams=True)


def test_naive_bayes_ratios_count_each_text_once_against_the_other_classes() -> None:
    x = torch.tensor([[2, 3, 3, 0], [2, 4, 0, 0], [5, 3, 1, 0]])
    split = SequenceSet(x, torch.tensor([3, 2, 3]), torch.tensor([1, 0, 1]))
    ratios = nb_ratios(split, 6, 2)
    # Per id, the texts of class 1 that hold it, plus one (word 3 counts once in the first
    # text), and the same for class 0: then each as a share of its class's total.
    inside, outside = np.array([1, 2, 2, 3, 1, 2]), np.array([1, 1, 2, 1, 2, 1])
    expected = np.log(inside / inside.sum()) - np.log(outside / outside.sum())
    expected[:2] = 0.0  # padding and the unknown word
    assert np.allclose(ratios[:, 1].numpy(), expected, atol=1e-6)
    assert np.allclose(ratios[:, 0].numpy(), -expected, atol=1e-6)  # two classes: mirrored
