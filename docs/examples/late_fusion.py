"""Does a run's model add anything to its lexical baseline? A measurement, not a feature.

For each classification task of a finished run, a logistic regression on the two systems' logits
(model, lexical) is fitted on the validation predictions, its threshold tuned there by the same rule as
every run's, and the fused predictions are compared with the lexical baseline's on test (paired bootstrap,
the studies' test). A fused score above lexical means the model carries signal the bag of words lacks.

    python docs/examples/late_fusion.py runs/paper-tasks-lora
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from scipy.special import logit
from sklearn.linear_model import LogisticRegression

from mtpeft.evaluate.metrics import classification_scores
from mtpeft.evaluate.outputs import best_threshold
from mtpeft.run.schema import read_metrics
from mtpeft.study.stats import PairedOutcomes, compare
from mtpeft.tasks.readers.base import iter_jsonl
from mtpeft.tasks.spec import TaskKind

SYSTEMS = ("", ".lexical")
"""Prediction-file suffixes: the model's, then the lexical baseline's."""


def labels_and_probabilities(run: Path, task: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Labels and ``(n, 2)`` probabilities (model, lexical) of one split, aligned on example ids."""
    model, lexical = ({row["id"]: row for _, row in iter_jsonl(run / "predictions" / f"{task}.{split}{system}.jsonl")}
                      for system in SYSTEMS)
    ids = sorted(model)
    return (np.array([model[i]["label"] for i in ids]),
            np.array([[model[i]["probability"], lexical[i]["probability"]] for i in ids]))


def main(run: Path) -> None:
    for task, entry in sorted(read_metrics(run / "metrics.json").tasks.items()):
        if entry.kind not in (TaskKind.BINARY, TaskKind.PAIR):
            continue
        (y_val, p_val), (y_test, p_test) = (labels_and_probabilities(run, task, split)
                                            for split in ("validation", "test"))
        features = [logit(np.clip(p, 1e-6, 1 - 1e-6)) for p in (p_val, p_test)]
        fusion = LogisticRegression().fit(features[0], y_val)
        systems = {"model": (p_val[:, 0], p_test[:, 0]), "lexical": (p_val[:, 1], p_test[:, 1]),
                   "fused": tuple(fusion.predict_proba(x)[:, 1] for x in features)}
        predicted = {name: (test >= best_threshold(y_val, val, entry.metric)).astype(int)
                     for name, (val, test) in systems.items()}
        score = {name: classification_scores(y_test, p)[entry.metric] for name, p in predicted.items()}
        gain = compare(PairedOutcomes(entry.metric, y_test, predicted["fused"], predicted["lexical"]))
        print(f"{task:14} {entry.metric:8} model {score['model']:.4f}  lexical {score['lexical']:.4f}  "
              f"fused {score['fused']:.4f}  fused - lexical {gain.delta:+.4f} [{gain.low:+.3f}, {gain.high:+.3f}] "
              f"p {gain.p_value:.3f}  weights (model, lexical) {np.round(fusion.coef_[0], 2).tolist()}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
