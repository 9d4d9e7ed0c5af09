"""Evaluation inside a run: every task on a split, thresholds tuned on validation, metrics.json."""

from __future__ import annotations

from typing import Any

import numpy as np

from mtpeft.evaluate.metrics import constant_baseline, random_retrieval_baseline
from mtpeft.evaluate.runner import SplitOutput, best_threshold, prediction_rows, run_split, score
from mtpeft.tasks.spec import TaskKind, TaskSpec
from mtpeft.train.build import Assembled

EVAL_BATCH = 64


def run_all(built: Assembled, split: str, accelerator: Any) -> dict[str, SplitOutput]:
    """Outputs of every task of the run on ``split``."""
    return {t: run_split(built.model, t, built.encoded[t][split], built.pad_id, EVAL_BATCH, accelerator.device,
                         accelerator.autocast) for t in sorted(built.tasks)}


def tune_thresholds(built: Assembled, validation: dict[str, SplitOutput]) -> dict[str, float]:
    """Per classification task, the threshold that maximises its main metric on validation."""
    return {t: best_threshold(out.labels, out.probabilities, built.tasks[t].spec.metric)
            for t, out in validation.items() if out.kind is not TaskKind.RETRIEVAL}


def final_evaluation(built: Assembled, accelerator: Any) -> tuple[dict[str, Any], dict[tuple[str, str], list], dict]:
    """Validation and test outputs of the selected weights: metrics, prediction rows, thresholds."""
    outputs = {split: run_all(built, split, accelerator) for split in ("validation", "test")}
    thresholds = tune_thresholds(built, outputs["validation"])
    specs = {name: data.spec for name, data in built.tasks.items()}
    metrics = summarise(specs, outputs, thresholds)
    predictions = {(t, split): prediction_rows(out, thresholds.get(t, 0.5))
                   for split, per_task in outputs.items() for t, out in per_task.items()}
    return metrics, predictions, thresholds


def summarise(specs: dict[str, TaskSpec], outputs: dict[str, dict[str, SplitOutput]],
              thresholds: dict[str, float]) -> dict[str, Any]:
    """metrics.json: every metric per task and split, the trivial baseline, and the mean main metric."""
    tasks: dict[str, Any] = {}
    for name in sorted(specs):
        spec = specs[name]
        entry: dict[str, Any] = {"kind": str(spec.kind), "metric": spec.metric, "threshold": thresholds.get(name)}
        for split, per_task in outputs.items():
            out = per_task[name]
            entry[split] = score(out, thresholds.get(name, 0.5))
            entry.setdefault("baseline", {})[split] = (
                random_retrieval_baseline(out.scores.shape[1])[spec.metric] if spec.kind is TaskKind.RETRIEVAL
                else constant_baseline(out.labels, spec.metric))
        tasks[name] = entry
    mean = {split: float(np.mean([tasks[t][split][tasks[t]["metric"]] for t in tasks])) for split in outputs}
    return {"tasks": tasks, "mean": mean}
