"""Evaluating a run's model: every task on a split, thresholds tuned on validation, the baselines, metrics.json.

The settings come from the run's ``train`` section (``eval_batch_size``, ``num_beams``), so training, `mtpeft eval`
and every reload evaluate alike.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from mtpeft.baselines import LexicalResult, lexical_baselines
from mtpeft.config import TrainConfig
from mtpeft.evaluate.metrics import constant_baseline, random_retrieval_baseline
from mtpeft.evaluate.outputs import DEFAULT_THRESHOLD, SplitOutput, best_threshold, prediction_rows, score
from mtpeft.evaluate.runner import run_split
from mtpeft.evaluate.sharding import Shard
from mtpeft.run.build import Assembled
from mtpeft.run.schema import Metrics
from mtpeft.tasks.spec import TaskKind, TaskSpec

Watch = Callable[[str, int], AbstractContextManager[Callable[[int], None]]]
"""Shows an evaluation pass: called with the split and its examples, it yields the callback that each finished
batch advances (``mtpeft.train.progress.RunProgress.evaluating``)."""


@contextmanager
def unwatched(split: str, examples: int) -> Iterator[Callable[[int], None]]:
    yield lambda done: None


def run_all(built: Assembled, split: str, accelerator: Any, settings: TrainConfig,
            tasks: list[str] | None = None, watch: Watch = unwatched) -> dict[str, SplitOutput]:
    """Outputs of every task of the run (or of ``tasks``) on ``split``; the processes of a distributed run
    share the examples, and each receives all of the outputs."""
    generator, shard, names = built.generator(settings.num_beams), Shard.of(accelerator), sorted(tasks or built.tasks)
    with watch(split, sum(len(shard.indices(len(built.encoded[t][split]))) for t in names)) as advance:
        return {t: run_split(built.model, t, built.encoded[t][split], built.pad_id, settings.eval_batch_size,
                             accelerator.device, accelerator.autocast, generator, shard, advance)
                for t in names}


def tune_thresholds(built: Assembled, validation: dict[str, SplitOutput]) -> dict[str, float]:
    """Per classification task, the threshold that maximises its main metric on validation."""
    return {t: best_threshold(out.labels, out.probabilities, built.tasks[t].spec.metric)
            for t, out in validation.items() if built.tasks[t].spec.is_classification}


def evaluate_untrained(built: Assembled, accelerator: Any, settings: TrainConfig,
                       ) -> tuple[dict[str, dict[str, Any]], dict[tuple[str, str], list]]:
    """Validation and test scores (and prediction rows) of the generation tasks BEFORE training: the
    baseline they must beat.

    Every method that supports generation starts as the identity (LoRA's B, the adapters' up-projection
    and IA3's scales start at zero or one), so this is the pretrained model itself, prompted the same way.
    """
    generation = [t for t, data in built.tasks.items() if data.spec.kind is TaskKind.GENERATION]
    if not generation:
        return {}, {}
    outputs = {split: run_all(built, split, accelerator, settings, generation) for split in ("validation", "test")}
    scores = {t: {split: score(outputs[split][t]) for split in outputs} for t in generation}
    rows = {(t, split): prediction_rows(out) for split, per_task in outputs.items() for t, out in per_task.items()}
    return scores, rows


@dataclass
class FinalEvaluation:
    """What the selected weights (and the baselines) scored, ready to be written into the run directory."""

    metrics: Metrics  # metrics.json
    predictions: dict[tuple[str, str], list]  # (task, split) -> rows; the lexical baseline's split is <split>.lexical
    thresholds: dict[str, float]  # tuned on validation, per classification task
    lexical_fit_s: dict[str, float]  # seconds the lexical baseline took per task (the ledger's, not metrics')


def final_evaluation(built: Assembled, accelerator: Any, settings: TrainConfig,
                     untrained: dict[str, dict[str, Any]] | None = None, baselines: Sequence[str] = ("trivial",),
                     validation: dict[str, SplitOutput] | None = None, watch: Watch = unwatched) -> FinalEvaluation:
    """Validation and test outputs of the selected weights, and of the baselines named in ``baselines``.

    ``validation``: the selected weights' validation outputs when training already computed them (evaluation
    is deterministic, so running it again would only repeat the same numbers).
    """
    outputs = {"validation": validation or run_all(built, "validation", accelerator, settings, watch=watch),
               "test": run_all(built, "test", accelerator, settings, watch=watch)}
    thresholds = tune_thresholds(built, outputs["validation"])
    specs = {name: data.spec for name, data in built.tasks.items()}
    lexical = lexical_baselines(built.tasks) if "lexical" in baselines else {}
    metrics = summarise(specs, outputs, thresholds, untrained, lexical, trivial="trivial" in baselines)
    predictions = {(t, split): prediction_rows(out, thresholds.get(t, DEFAULT_THRESHOLD))
                   for split, per_task in outputs.items() for t, out in per_task.items()}
    predictions.update(lexical_rows(lexical))
    return FinalEvaluation(metrics, predictions, thresholds, {t: r.fit_time_s for t, r in lexical.items()})


def lexical_rows(lexical: dict[str, LexicalResult]) -> dict[tuple[str, str], list]:
    """Prediction rows of the lexical baselines, keyed ``(task, "<split>.lexical")``: written beside the
    model's, so that studies can test the model against them example by example."""
    return {(task, f"{split}.lexical"): prediction_rows(out, _threshold(result))
            for task, result in lexical.items() for split, out in result.outputs.items()}


def summarise(specs: dict[str, TaskSpec], outputs: dict[str, dict[str, SplitOutput]],
              thresholds: dict[str, float], untrained: dict[str, dict[str, Any]] | None = None,
              lexical: dict[str, LexicalResult] | None = None, trivial: bool = True) -> Metrics:
    """metrics.json: every metric per task and split, the baselines, and the mean main metric.

    ``baseline`` (with ``trivial``) is the best constant predictor (classification), a random ranking
    (retrieval), or the model before training (generation, from ``untrained``; None when not measured).
    ``lexical`` holds every metric of the lexical baseline per split, with what it was and its threshold.
    """
    tasks: dict[str, Any] = {}
    for name in sorted(specs):
        spec = specs[name]
        entry: dict[str, Any] = {"kind": str(spec.kind), "metric": spec.metric, "threshold": thresholds.get(name)}
        for split, per_task in outputs.items():
            out = per_task[name]
            entry[split] = score(out, thresholds.get(name, DEFAULT_THRESHOLD))
            if trivial:
                entry.setdefault("baseline", {})[split] = _baseline(spec, out,
                                                                    (untrained or {}).get(name, {}).get(split))
        if lexical and name in lexical:
            entry["lexical"] = _lexical_entry(lexical[name])
        if spec.kind is TaskKind.GENERATION and untrained and name in untrained:
            entry["untrained"] = untrained[name]
        tasks[name] = entry
    mean = {split: float(np.mean([tasks[t][split][tasks[t]["metric"]] for t in tasks])) for split in outputs}
    return Metrics.model_validate({"tasks": tasks, "mean": mean})


def _lexical_entry(result: LexicalResult) -> dict[str, Any]:
    if result.skipped:
        return {"method": result.method, "skipped": result.skipped}
    return {"method": result.method, "threshold": result.threshold,
            **{split: score(out, _threshold(result)) for split, out in result.outputs.items()}}


def _threshold(result: LexicalResult) -> float:
    return DEFAULT_THRESHOLD if result.threshold is None else result.threshold


def _baseline(spec: TaskSpec, out: SplitOutput, untrained: dict[str, float] | None) -> float | None:
    if spec.kind is TaskKind.GENERATION:
        return untrained[spec.metric] if untrained else None
    if spec.kind is TaskKind.RETRIEVAL:
        return random_retrieval_baseline(out.scores.shape[1])[spec.metric]
    return constant_baseline(out.labels, spec.metric)
