"""Benchmark 5 (issue 15): one epoch on long series, the convolutional stem against a plain LSTM.

The product's trainer (``study.training.train_epoch``) on a long set bundled with sktime, the
same LSTM (64 units; one layer, and two bidirectional ones; batch 16) three times: plain, the
recurrence running every step; with the stem the default search space gives such data
(``stem=auto``: strided convolutions until at most ``stem_steps`` = 128 steps remain); and with
that stem and the LSTM-FCN branch (``fcn=true``), whose convolutions read every step. Epochs
alternate (plain, stem, stem + FCN, plain, ...) so all see the same machine noise; the table
shows the median seconds per epoch and the ratios to plain, and each model's validation accuracy
after the timed epochs (a sanity check that the faster model learns, not a tuned result). Usage:

    python bench/long_series.py [--datasets ACSF1 PLAID] [--epochs 3] [--device cpu] [--write]

``--write`` replaces this benchmark's table in BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _markdown import write_block  # noqa: E402

from study.config import load_config
from study.models import build_model, resolve_stem
from study.setup import load_checked_data
from study.training import build_optimizer, evaluate, train_epoch

PARAMS = {
    "cell": "lstm", "hidden_size": 64, "dropout": 0.2, "input_dropout": 0.0, "pooling": "last",
    "lr": 3e-3, "batch_size": 16, "optimizer": "adam", "weight_decay": 1e-5, "clip_norm": 1.0,
    "stem_steps": 128,
}  # fmt: skip
#: The LSTM shapes compared: (layers, bidirectional).
SHAPES = ((1, False), (2, True))


def measure(
    dataset: str, shape: tuple[int, bool], epochs: int, device: torch.device
) -> dict[str, float | int | str]:
    cfg = load_config(["data=ucr", f"data.dataset={dataset}"])
    data = load_checked_data(cfg).to(device)
    gen = torch.Generator().manual_seed(0)
    runs = {}
    layers, bidirectional = shape
    for variant, stem, fcn in (("plain", "none", False), ("stem", "auto", False),
                               ("fcn", "auto", True)):  # fmt: skip
        chosen = {**PARAMS, "num_layers": layers, "bidirectional": bidirectional, "stem": stem,
                  "fcn": fcn}  # fmt: skip
        params = resolve_stem(chosen, data.longest())
        torch.manual_seed(0)
        model = build_model(cfg.model, data.dims(), params).to(device)
        opt = build_optimizer("adam", model.parameters(), PARAMS["lr"], PARAMS["weight_decay"])
        runs[variant] = (params, model, opt, [])
    for epoch in range(epochs + 1):  # the first round warms up and is not counted
        for _, model, opt, seconds in runs.values():
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            train_epoch(model, opt, data, PARAMS["batch_size"], PARAMS["clip_norm"], gen)
            if device.type == "cuda":
                torch.cuda.synchronize()
            if epoch:
                seconds.append(time.perf_counter() - start)
    return {
        "dataset": dataset,
        "shape": f"{layers} × 64" + (", bidirectional" if bidirectional else ""),
        "train": len(data.train),
        "longest": data.longest(),
        "reduction": runs["stem"][0]["stem_reduction"],
        **{k: statistics.median(run[3]) for k, run in runs.items()},
        **{f"{k}_acc": evaluate(run[1], data, data.val)["accuracy"] for k, run in runs.items()},
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--datasets", nargs="+", default=["ACSF1", "PLAID"])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    device = torch.device(args.device)
    rows = [
        "| data (train series, longest) | LSTM | stem | plain: s/epoch | with stem: s/epoch "
        "| speed-up | goal | stem + FCN: s/epoch | speed-up "
        "| val. accuracy after the epochs (plain / stem / stem + FCN) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name in args.datasets:
        for shape in SHAPES:
            r = measure(name, shape, args.epochs, device)
            rows.append(
                f"| {r['dataset']} ({r['train']}, {r['longest']} steps) | {r['shape']} "
                f"| conv, length ÷ {r['reduction']} | {r['plain']:.2f} | {r['stem']:.2f} "
                f"| **{float(r['plain']) / float(r['stem']):.1f}×** | ≥ 10× "
                f"| {r['fcn']:.2f} | {float(r['plain']) / float(r['fcn']):.1f}× "
                f"| {r['plain_acc']:.2f} / {r['stem_acc']:.2f} / {r['fcn_acc']:.2f} |"
            )
            print(rows[-1], flush=True)
    table = "\n".join(rows)
    print(table)
    if args.write:
        write_block(
            "long_series",
            f"`python bench/long_series.py --datasets {' '.join(args.datasets)} --epochs "
            f"{args.epochs} --device {args.device} --write` ({time.strftime('%Y-%m-%d')}, "
            f"torch {torch.__version__}, {torch.get_num_threads()} threads; batch 16):\n\n{table}",
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
