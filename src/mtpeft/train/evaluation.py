"""Evaluation inside a run: every task on a split, thresholds tuned on validation, metrics.json."""

from __future__ import annotations

from typing import Any

import numpy as np

from mtpeft.evaluate.generation import generation_scores
from mtpeft.evaluate.metrics import constant_baseline, random_retrieval_baseline
from mtpeft.evaluate.runner import SplitOutput, best_threshold, prediction_rows, run_split, score
from mtpeft.tasks.spec import TaskKind, TaskSpec
from mtpeft.train.build import Assembled

EVAL_BATCH = 64


def run_all(built: Assembled, split: str, accelerator: Any, num_beams: int = 1,
            tasks: list[str] | None = None) -> dict[str, SplitOutput]:
    """Outputs of every task of the run (or of ``tasks``) on ``split``."""
    generator = built.generator(num_beams)
    return {t: run_split(built.model, t, built.encoded[t][split], built.pad_id, EVAL_BATCH, accelerator.device,
                         accelerator.autocast, generator) for t in sorted(tasks or built.tasks)}


def tune_thresholds(built: Assembled, validation: dict[str, SplitOutput]) -> dict[str, float]:
    """Per classification task, the threshold that maximises its main metric on validation."""
    return {t: best_threshold(out.labels, out.probabilities, built.tasks[t].spec.metric)
            for t, out in validation.items() if built.tasks[t].spec.is_classification}


def evaluate_untrained(built: Assembled, accelerator: Any, num_beams: int = 1,
                       ) -> tuple[dict[str, dict[str, Any]], dict[tuple[str, str], list]]:
    """Validation and test scores (and prediction rows) of the generation tasks BEFORE training: the
    baseline they must beat.

    Every method that supports generation starts as the identity (LoRA's B, the adapters' up-projection
    and IA3's scales start at zero or one), so this is the pretrained model itself, prompted the same way.
    """
    generation = [t for t, data in built.tasks.items() if data.spec.kind is TaskKind.GENERATION]
    if not generation:
        return {}, {}
    outputs = {split: run_all(built, split, accelerator, num_beams, generation) for split in ("validation", "test")}
    scores = {t: {split: score(outputs[split][t]) for split in outputs} for t in generation}
    rows = {(t, split): prediction_rows(out) for split, per_task in outputs.items() for t, out in per_task.items()}
    return scores, rows


def final_evaluation(built: Assembled, accelerator: Any, num_beams: int = 1,
                     untrained: dict[str, dict[str, Any]] | None = None,
                     ) -> tuple[dict[str, Any], dict[tuple[str, str], list], dict]:
    """Validation and test outputs of the selected weights: metrics, prediction rows, thresholds."""
    outputs = {split: run_all(built, split, accelerator, num_beams) for split in ("validation", "test")}
    thresholds = tune_thresholds(built, outputs["validation"])
    specs = {name: data.spec for name, data in built.tasks.items()}
    metrics = summarise(specs, outputs, thresholds, untrained)
    for task, scores in copy_input_scores(built, list(outputs)).items():
        metrics["tasks"][task]["copy_input"] = scores
    predictions = {(t, split): prediction_rows(out, thresholds.get(t, 0.5))
                   for split, per_task in outputs.items() for t, out in per_task.items()}
    return metrics, predictions, thresholds


def copy_input_scores(built: Assembled, splits: list[str]) -> dict[str, dict[str, Any]]:
    """Generation tasks scored as if the model copied its input: the trivial baseline of code-to-code tasks
    (a bug fix changes few tokens, so the buggy method already scores a high BLEU against the fix)."""
    out = {}
    for name, data in built.tasks.items():
        if data.spec.kind is TaskKind.GENERATION:
            out[name] = {split: generation_scores([ex.text for ex in data.splits[split]],
                                                  [ex.target or "" for ex in data.splits[split]], data.spec.language)
                         for split in splits}
    return out


def summarise(specs: dict[str, TaskSpec], outputs: dict[str, dict[str, SplitOutput]],
              thresholds: dict[str, float], untrained: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """metrics.json: every metric per task and split, the baseline, and the mean main metric.

    The baseline is the best constant predictor (classification), a random ranking (retrieval), or the
    model before training (generation, from ``untrained``; None when not measured).
    """
    tasks: dict[str, Any] = {}
    for name in sorted(specs):
        spec = specs[name]
        entry: dict[str, Any] = {"kind": str(spec.kind), "metric": spec.metric, "threshold": thresholds.get(name)}
        for split, per_task in outputs.items():
            out = per_task[name]
            entry[split] = score(out, thresholds.get(name, 0.5))
            entry.setdefault("baseline", {})[split] = _baseline(spec, out, (untrained or {}).get(name, {}).get(split))
        if spec.kind is TaskKind.GENERATION and untrained and name in untrained:
            entry["untrained"] = untrained[name]
        tasks[name] = entry
    mean = {split: float(np.mean([tasks[t][split][tasks[t]["metric"]] for t in tasks])) for split in outputs}
    return {"tasks": tasks, "mean": mean}


def _baseline(spec: TaskSpec, out: SplitOutput, untrained: dict[str, float] | None) -> float | None:
    if spec.kind is TaskKind.GENERATION:
        return untrained[spec.metric] if untrained else None
    if spec.kind is TaskKind.RETRIEVAL:
        return random_retrieval_baseline(out.scores.shape[1])[spec.metric]
    return constant_baseline(out.labels, spec.metric)
