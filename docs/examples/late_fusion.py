"""Does a run's model add anything to its lexical baseline? A measurement, not a feature.

For each classification task of a finished run, a logistic regression on the two systems' logits
(model, lexical) is fitted on the validation predictions, its threshold tuned there by the same rule as
every run's, and the fused predictions are compared with the lexical baseline's on test (paired bootstrap,
the studies' test). A fused score above lexical means the model carries signal the bag of words lacks.

    python docs/examples/late_fusion.py runs/paper-tasks-lora
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression

from mtpeft.evaluate.metrics import classification_scores
from mtpeft.evaluate.outputs import best_threshold
from mtpeft.study.stats import PairedOutcomes, compare
from mtpeft.tasks.readers.base import iter_jsonl


def probabilities(run: Path, task: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Labels and ``(n, 2)`` logits (model, lexical) of one split, aligned on example ids."""
    model, lexical = ({row["id"]: row for _, row in iter_jsonl(run / "predictions" / f"{task}.{split}{system}.jsonl")}
                      for system in ("", ".lexical"))
    ids = sorted(model)
    p = np.clip([[model[i]["probability"], lexical[i]["probability"]] for i in ids], 1e-6, 1 - 1e-6)
    return np.array([model[i]["label"] for i in ids]), np.log(p / (1 - p))


def main(run: Path) -> None:
    metrics = json.loads((run / "metrics.json").read_text())
    for task, entry in sorted(metrics["tasks"].items()):
        if entry["kind"] not in ("binary", "pair"):
            continue
        metric = entry["metric"]
        (y_val, x_val), (y_test, x_test) = (probabilities(run, task, split) for split in ("validation", "test"))
        fusion = LogisticRegression().fit(x_val, y_val)
        systems = {"model": (x_val[:, 0], x_test[:, 0]), "lexical": (x_val[:, 1], x_test[:, 1]),
                   "fused": (fusion.decision_function(x_val), fusion.decision_function(x_test))}
        predicted = {}
        for name, (val, test) in systems.items():
            val_p, test_p = 1 / (1 + np.exp(-val)), 1 / (1 + np.exp(-test))
            predicted[name] = (test_p >= best_threshold(y_val, val_p, metric)).astype(int)
        score = {name: classification_scores(y_test, p)[metric] for name, p in predicted.items()}
        gain = compare(PairedOutcomes(metric, y_test, predicted["fused"], predicted["lexical"]))
        print(f"{task:14} {metric:8} model {score['model']:.4f}  lexical {score['lexical']:.4f}  "
              f"fused {score['fused']:.4f}  fused - lexical {gain.delta:+.4f} [{gain.low:+.3f}, {gain.high:+.3f}] "
              f"p {gain.p_value:.3f}  weights (model, lexical) {np.round(fusion.coef_[0], 2).tolist()}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
