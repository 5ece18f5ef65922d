"""What a study looks like now: trials by state, the best trial, the test score once it exists."""

from __future__ import annotations

from typing import Any

from study.artifacts import describe
from study.storage import BudgetedRDBStorage, load_existing, trial_counts


def summary(storage: BudgetedRDBStorage, name: str, artifacts: Any) -> dict[str, Any]:
    study = load_existing(storage, name)
    counts = trial_counts(storage, study._study_id)
    counts["total"] = sum(counts.values())
    attrs = study.user_attrs
    best: dict[str, Any] | None = None
    try:
        trial = study.best_trial
        best = {
            "number": trial.number,
            "value": trial.value,
            "params": trial.user_attrs.get("params_all", trial.params),
            "val_accuracy": trial.user_attrs.get("val_accuracy"),
            "best_epoch": trial.user_attrs.get("best_epoch"),
        }
        if "model_artifact" in trial.user_attrs:  # the one final model the study keeps
            best["model"] = describe(artifacts, trial.user_attrs["model_artifact"])
        test = attrs.get("test")
        if test and test.get("trial") == trial.number:
            best["test"] = test
    except ValueError:
        pass
    return {
        "study": name,
        "direction": study.direction.name.lower(),
        "metric": attrs.get("settings", {}).get("metric"),
        "n_trials": counts,
        "best": best,
    }


def best_line(s: dict[str, Any]) -> str:
    b = s["best"]
    if b is None:
        return "no trial completed yet"
    line = f"best trial {b['number']}: {s['metric']}={b['value']:.4f}"
    if b.get("val_accuracy") is not None:
        line += f", val accuracy {b['val_accuracy']:.3f}"
    if "test" in b:
        t = b["test"]
        line += f", TEST accuracy {t['accuracy']:.4f} (macro-F1 {t['f1']:.4f}, n={t['n']})"
    if "model" in b:
        line += f"\n  model: {b['model']}"
    return line


__all__ = ["best_line", "summary"]
