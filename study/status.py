"""What a study looks like now: trials by state, the best trial, the test score once it exists."""

from __future__ import annotations

from typing import Any

from study import baselines, iterations
from study.artifact_options import ArtifactOptions
from study.errors import StudyError
from study.rdb import BudgetedRDBStorage
from study.storage import best_trial, load_existing, trial_counts, trial_params


def summary(storage: BudgetedRDBStorage, name: str, artifacts: ArtifactOptions) -> dict[str, Any]:
    study = load_existing(storage, name)
    counts = trial_counts(storage, storage.get_study_id_from_name(name))
    counts["total"] = sum(counts.values())
    attrs = study.user_attrs
    best: dict[str, Any] | None = None
    try:
        trial = best_trial(study)
        best = {
            "number": trial.number,
            "value": trial.value,
            "params": trial_params(trial),
            "val_accuracy": trial.user_attrs.get("val_accuracy"),
            # The best epoch's other validation metrics (accuracy, F1; or RMSE, MAE, MAPE).
            "metrics": {k: v for k, v in trial.user_attrs.items() if k.startswith("val_")},
            "best_epoch": trial.user_attrs.get("best_epoch"),
        }
        if "model_artifact" in trial.user_attrs:  # the one final model the study keeps
            best["model"] = artifacts.describe(trial.user_attrs["model_artifact"])
        test = attrs.get("test")
        if test and test.get("trial") == trial.number:
            best["test"] = test
    except StudyError:
        pass
    result = {
        "study": name,
        "direction": study.direction.name.lower(),
        "metric": attrs.get("settings", {}).get("metric"),
        "n_trials": counts,
        "best": best,
    }
    if "iterations" in attrs:  # hand-tuned steps ran first: compare them with the search
        trials = study.get_trials(deepcopy=False)
        result["iterations"] = iterations.compare(trials, result["direction"])
    return result


def studies(storage: BudgetedRDBStorage) -> list[dict[str, Any]]:
    """Every study in the storage, oldest first: its trials by state and its best value."""
    rows = []
    found = [(storage.get_study_id_from_name(f.study_name), f) for f in storage.get_all_studies()]
    for study_id, frozen in sorted(found, key=lambda pair: pair[0]):
        counts = trial_counts(storage, study_id)
        try:
            best: float | None = storage.get_best_trial(study_id).value
        except ValueError:  # no completed trial yet
            best = None
        rows.append(
            {
                "study": frozen.study_name,
                "metric": frozen.user_attrs.get("settings", {}).get("metric"),
                "direction": frozen.direction.name.lower(),
                "n_trials": {**counts, "total": sum(counts.values())},
                "best_value": best,
                "tested": "test" in frozen.user_attrs,
            }
        )
    return rows


def list_lines(rows: list[dict[str, Any]], chosen: str) -> list[str]:
    """One line per study; ``*`` marks the one status, test and report read without a name."""
    if not rows:
        return ["no studies yet"]
    width = max(len(r["study"]) for r in rows)
    lines = []
    for r in rows:
        n = r["n_trials"]
        states = ", ".join(
            f"{k.lower()} {n[k]}" for k in ("COMPLETE", "PRUNED", "RUNNING", "WAITING") if n[k]
        )
        best = "-" if r["best_value"] is None else f"{r['best_value']:.4g}"
        mark = "*" if r["study"] == chosen else " "
        lines.append(
            f"{mark} {r['study']:<{width}}  {n['total']:>5} trials ({states or 'none'})  "
            f"best {r['metric'] or 'value'} {best}{'  tested' if r['tested'] else ''}"
        )
    return lines


def iterations_lines(s: dict[str, Any]) -> list[str]:
    """The baseline and hand-tuned iterations in order, then the best automatic trial."""
    it = s.get("iterations")
    if not it:
        return []
    width = max(len(r["name"]) for r in it["iterations"]) + 2

    def line(name: str, trial: int, value: float | None, state: str) -> str:
        shown = f"{s['metric']}={value:.4f}" if value is not None else state
        return f"  {name:<{width}} trial {trial:<4} {shown}"

    lines = ["iterations, then the automatic search:"]
    lines += [line(r["name"], r["trial"], r["value"], r["state"]) for r in it["iterations"]]
    auto = it["automatic"]
    if auto:
        lines.append(line("automatic best", auto["trial"], auto["value"], ""))
    return lines


def best_line(s: dict[str, Any]) -> str:
    b = s["best"]
    if b is None:
        return "no trial completed yet"
    line = f"best trial {b['number']}: {s['metric']}={b['value']:.4f}"
    if b.get("val_accuracy") is not None:
        line += f", val accuracy {b['val_accuracy']:.3f}"
    if "test" in b:
        line += f", {test_line(b['test'])}"
    if "model" in b:
        line += f"\n  model: {b['model']}"
    return line


def test_line(t: dict[str, Any]) -> str:
    """The test score in a phrase (accuracy and F1, or errors), then the classical baselines on
    the same targets and whether the tuned model beats them."""
    if "accuracy" in t:
        line = f"TEST accuracy {t['accuracy']:.4f} (macro-F1 {t['f1']:.4f}, n={t['n']})"
        metric, shown = "accuracy", "{:.4f}"
    else:
        n = f"{t['n']} origin{'s' if t['n'] != 1 else ''}"
        line = f"TEST RMSE {t['rmse']:.4g} (MAE {t['mae']:.4g}, MAPE {t['mape']:.2f}%, {n})"
        metric, shown = "rmse", "{:.4g}"
    chosen = t.get("ensemble", {})
    members = chosen.get("members")
    if members:
        alone = ", ".join(shown.format(m[metric]) for m in members)
        trials = f"{len(members)} trial{'s' if len(members) != 1 else ''}"
        if chosen.get("selection") == "greedy":
            picks = "/".join(map(str, chosen["picks"]))
            line += (
                f"; ensemble of {trials} chosen greedily on validation from the "
                f"{len(chosen['pool'])} best (picks {picks}; alone: {alone})"
            )
        else:
            line += f"; ensemble of {trials} (alone: {alone})"
    classical = t.get("baselines") or {}
    if "seasonal_naive" in t:  # a score stored before the classical models existed
        classical = {"seasonal naive": t["seasonal_naive"], **classical}
    if classical:
        listed = ", ".join(f"{name} {shown.format(s[metric])}" for name, s in classical.items())
        line += f"; {listed}"
        strongest = baselines.best(classical, metric)
        if strongest is not None:
            name, value = strongest
            ahead = t[metric] > value if metric == "accuracy" else t[metric] < value
            line += f": {'beats' if ahead else 'does not beat'} {name}"
    hybrid = t.get("on_arima_base", 0)
    if hybrid:  # the tuned model stands on a classical one (search_space.base=arima)
        models = len(members) if members else 1
        share = f"{hybrid} of {models} " if models > 1 else ""
        line += f" ({share}on the ARIMA base)"
    return line + _retrained(t)


def _retrained(t: dict[str, Any]) -> str:
    r = t.get("retrained")
    if not r:
        return ""
    seeds = f", {r['seeds']} seeds averaged" if r.get("seeds", 1) > 1 else ""
    return f"; retrained on {r['train_examples']} examples, {r['epochs']} epochs{seeds}"


__all__ = ["best_line", "iterations_lines", "summary", "test_line"]
