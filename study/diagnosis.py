"""Bias and variance of a trained model, from its training and validation error.

The usual reading: the gap between the training error and the error one could hope for (a
human-level or otherwise known *target* error, 0 if none is given) is the avoidable **bias**;
the gap between the validation and the training error is the **variance**. Each is "high" when
it exceeds ``tolerance`` (by default 0.05, five points of error rate, for classification; a
tenth of the validation error otherwise). Errors are 1 - accuracy for classification, the RMSE
(in the data's units) for forecasting, or the loss where nothing else was recorded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ADVICE = {
    "high bias": [
        "a bigger network: more hidden units or layers",
        "train longer (raise max_epochs) or with a better-tuned (often lower) learning rate",
        "less regularisation (dropout, weight decay)",
    ],
    "high variance": [
        "more training data (or less of it held out: protocol.folds)",
        "more regularisation: dropout, input dropout, weight decay",
        "a smaller network, or stop earlier",
    ],
}
ADVICE["high bias and high variance"] = ADVICE["high bias"][:2] + ADVICE["high variance"][1:2]
ADVICE["good"] = ["close to the target: tune the rest, or lower the target to see what is left"]


@dataclass
class Diagnosis:
    verdict: str
    measure: str
    train_error: float
    val_error: float
    target_error: float
    bias: float
    variance: float
    tolerance: float
    advice: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (
            f"{self.verdict}: {self.measure} train {self.train_error:.4g}, validation "
            f"{self.val_error:.4g}, target {self.target_error:.4g} (bias {self.bias:+.4g}, "
            f"variance {self.variance:+.4g}; tolerance {self.tolerance:.4g})"
        )


def diagnose(
    train_error: float,
    val_error: float,
    *,
    target_error: float = 0.0,
    tolerance: float | None = None,
    measure: str = "error rate",
) -> Diagnosis:
    if tolerance is None:
        tolerance = 0.05 if measure == "error rate" else 0.1 * abs(val_error)
    bias = train_error - target_error
    variance = val_error - train_error
    high_bias, high_variance = bias > tolerance, variance > tolerance
    if high_bias and high_variance:
        verdict = "high bias and high variance"
    elif high_bias:
        verdict = "high bias"
    elif high_variance:
        verdict = "high variance"
    else:
        verdict = "good"
    return Diagnosis(
        verdict,
        measure,
        train_error,
        val_error,
        target_error,
        bias,
        variance,
        tolerance,
        list(ADVICE[verdict]),
    )


def errors(row: dict[str, Any]) -> tuple[str, float, float]:
    """The error measure a row of a learning curve (or a train evaluation) offers: 1 - accuracy,
    else the RMSE, else the loss; returns (name, train error, validation error)."""
    if "train_accuracy" in row and "val_accuracy" in row:
        return "error rate", 1.0 - row["train_accuracy"], 1.0 - row["val_accuracy"]
    if "train_rmse" in row and "val_rmse" in row:
        return "RMSE", row["train_rmse"], row["val_rmse"]
    return "loss", row["train_loss"], row["val_loss"]


def of_trial(
    user_attrs: dict[str, Any], *, target_error: float = 0.0, tolerance: float | None = None
) -> Diagnosis | None:
    """A finished trial's diagnosis at its best epoch: the training split re-scored in
    evaluation mode by the best weights (``train_eval``) where recorded, otherwise the
    training pass of that epoch."""
    curve = user_attrs.get("curve") or []
    if not curve:
        return None
    best = user_attrs.get("best_epoch")
    row = dict(curve[best] if isinstance(best, int) and 0 <= best < len(curve) else curve[-1])
    for key, value in (user_attrs.get("train_eval") or {}).items():
        row[f"train_{key}"] = value
    measure, train, val = errors(row)
    return diagnose(train, val, target_error=target_error, tolerance=tolerance, measure=measure)
