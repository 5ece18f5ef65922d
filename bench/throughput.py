"""Benchmark 1 (issue 7): training throughput, our trainer against a tutorial-style loop.

Same model (the default LSTM shape), same data (JapaneseVowels' training split), same batch
size. The reference is written the usual tutorial way: a ``Dataset`` of unpadded sequences, a
``DataLoader`` per epoch whose collate function pads each batch, float32, and ``loss.item()``
after every step, PyTorch's default Adam. Ours is ``study.training.train_epoch``: the split
resident on the device, padded once per worker, batches bucketed by length, fused Adam, one host
sync per epoch.

Runs alternate (ours, reference, ours, ...) so both see the same machine noise; the table shows
the median sequences per second of each and their ratio. Usage:

    python bench/throughput.py [--epochs 6] [--device cpu|cuda] [--write]

``--write`` replaces this benchmark's table in BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import DataLoader, Dataset

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _markdown import write_block  # noqa: E402

from study.config import load_config
from study.models import build_model
from study.setup import load_checked_data
from study.training import build_optimizer, train_epoch

ROOT = Path(__file__).resolve().parents[1]
PARAMS = {
    "cell": "lstm", "hidden_size": 64, "num_layers": 2, "dropout": 0.2, "input_dropout": 0.1,
    "bidirectional": True, "pooling": "last", "lr": 3e-3, "batch_size": 32, "optimizer": "adam",
    "weight_decay": 1e-5, "clip_norm": 1.0,
}  # fmt: skip


class Sequences(Dataset):  # type: ignore[type-arg]
    def __init__(self, x: torch.Tensor, lengths: torch.Tensor, y: torch.Tensor) -> None:
        self.items = [(x[i, : int(n)].clone(), y[i]) for i, n in enumerate(lengths)]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.items[i]


def collate(batch: list[tuple[torch.Tensor, torch.Tensor]]):  # type: ignore[no-untyped-def]
    seqs, ys = zip(*batch, strict=True)
    lengths = torch.tensor([len(s) for s in seqs])
    return pad_sequence(list(seqs), batch_first=True), lengths, torch.stack(list(ys))


def reference_epoch(model, optimizer, loader, device) -> float:  # type: ignore[no-untyped-def]
    model.train()
    total = 0.0
    for x, lengths, y in loader:
        x, y = x.to(device), y.to(device)
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x, lengths), y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), PARAMS["clip_norm"])
        optimizer.step()
        total += loss.item()  # a host sync every step, as tutorials do
    return total


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    device = torch.device(args.device)
    cfg = load_config([])
    data = load_checked_data(cfg)
    n = len(data.train)

    def fresh(tutorial: bool):  # type: ignore[no-untyped-def]
        torch.manual_seed(0)
        model = build_model(cfg.model, data.dims(), PARAMS).to(device)
        lr, decay = PARAMS["lr"], PARAMS["weight_decay"]
        if tutorial:  # Adam as tutorials write it (PyTorch's default implementation)
            return model, torch.optim.Adam(model.parameters(), lr=lr, weight_decay=decay)
        return model, build_optimizer("adam", model.parameters(), lr, decay)

    ours_data = data.to(device)
    loader_set = Sequences(data.train.x, data.train.lengths, data.train.y)
    gen = torch.Generator().manual_seed(0)
    rates: dict[str, list[float]] = {"ours": [], "reference": []}
    m_ours, o_ours = fresh(tutorial=False)
    m_ref, o_ref = fresh(tutorial=True)

    def timed(fn) -> float:  # type: ignore[no-untyped-def]
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return n / (time.perf_counter() - start)

    for epoch in range(args.epochs + 1):  # the first round warms up and is not counted
        r1 = timed(lambda: train_epoch(m_ours, o_ours, ours_data, 32, 1.0, gen))
        loader = DataLoader(loader_set, batch_size=32, shuffle=True, collate_fn=collate)
        r2 = timed(lambda: reference_epoch(m_ref, o_ref, loader, device))  # noqa: B023
        if epoch:
            rates["ours"].append(r1)
            rates["reference"].append(r2)
    ours, ref = statistics.median(rates["ours"]), statistics.median(rates["reference"])
    goal = 3.0 if device.type == "cuda" else 1.2
    machine = (
        torch.cuda.get_device_name(device) if device.type == "cuda"
        else f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
    )  # fmt: skip
    rows = [
        "| device | ours (seq/s) | reference (seq/s) | ratio | goal |",
        "|---|---|---|---|---|",
        f"| {args.device} ({machine}) | {ours:,.0f} | {ref:,.0f} | **{ours / ref:.2f}×** "
        f"| ≥ {goal}× |",
    ]
    table = "\n".join(rows)
    print(f"JapaneseVowels train split ({n} sequences), LSTM 2×64 bidirectional, batch 32, "
          f"median of {args.epochs} epochs each, alternating")  # fmt: skip
    print(table)
    if args.write:
        write_block(
            "throughput",
            f"`python bench/throughput.py --device {args.device} --epochs {args.epochs} --write` "
            f"({time.strftime('%Y-%m-%d')}, torch {torch.__version__}):\n\n{table}",
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
