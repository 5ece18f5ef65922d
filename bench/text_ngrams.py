"""Issue 15, text: one configuration on Rotten Tomatoes with and without the n-gram part.

The focused search's best trial (README, "Measured here"): a bidirectional 111-unit LSTM with
max pooling and the naive Bayes ratios, lr 0.0081, batch 64, embeddings of 64, 64 tokens,
trained by the product's trainer for ``--epochs`` epochs; the epoch with the best validation
accuracy is the one scored on the test split (as a trial's best epoch is). Each seed trains both
variants from the same initial weights of the shared parts and the same batches. Prints a
table; a quality ablation, not a speed benchmark, so nothing is written to BENCHMARKS.md.
Usage:

    python bench/text_ngrams.py [--seeds 0 1] [--epochs 6]
"""

from __future__ import annotations

import argparse
import time

import torch

from study.config import load_config
from study.models import build_model, fit_ratios
from study.setup import load_checked_data
from study.training import build_optimizer, evaluate, train_epoch

PARAMS = {
    "cell": "lstm", "hidden_size": 111, "num_layers": 1, "bidirectional": True,
    "pooling": "max", "embedding_dim": 64, "max_length": 64, "input_dropout": 0.2,
    "dropout": 0.0, "stem": "none", "stem_steps": 128, "nb_ratios": True,
}  # fmt: skip
LR, BATCH, WEIGHT_DECAY, CLIP = 0.0081, 64, 1e-5, 1.0


def run(seed: int, ngrams: bool, epochs: int) -> tuple[float, float, int, float]:
    """(validation accuracy, test accuracy, epoch) at the best validation epoch, and seconds."""
    cfg = load_config(["data=rotten_tomatoes", "study.metric=val_accuracy"])
    params = {**PARAMS, "ngrams": ngrams}
    data = load_checked_data(cfg).for_trial(params)
    torch.manual_seed(seed)
    model = build_model(cfg.model, data.dims(), params, data.pretrained)
    fit_ratios(model, data.train)
    opt = build_optimizer("adam", model.parameters(), LR, WEIGHT_DECAY)
    gen = torch.Generator().manual_seed(seed)
    best, start = (-1.0, 0.0, 0), time.perf_counter()
    for epoch in range(1, epochs + 1):
        train_epoch(model, opt, data, BATCH, CLIP, gen)
        val = evaluate(model, data, data.val)["accuracy"]
        if val > best[0]:
            best = (val, evaluate(model, data, data.test)["accuracy"], epoch)
    return (*best, time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--epochs", type=int, default=6)
    args = parser.parse_args()
    print("| seed | n-gram part | validation | test | best epoch | seconds |")
    print("|---|---|---|---|---|---|")
    for seed in args.seeds:
        for ngrams in (False, True):
            val, test, epoch, seconds = run(seed, ngrams, args.epochs)
            print(f"| {seed} | {'with' if ngrams else 'without'} | {val:.3f} | {test:.3f} "
                  f"| {epoch} | {seconds:.0f} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
