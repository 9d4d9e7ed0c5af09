"""What do a config's pretrained features already hold? A linear probe, a measurement, not a feature.

The model of a run config is built as training would build it (a LoRA starts as the identity, so these are the
pretrained features), every example of each classification task is encoded once without gradients, as the task
reads it (truncated or windows; a siamese pair's functions apart), and a logistic regression is fitted on the
training vectors (``[|u-v|, u*v]`` for a siamese pair), its threshold tuned on validation by the runs' rule, then
scored on test. If it beats the fine-tuned run of the same examples, fine-tuning ended below its starting point.

    python docs/examples/frozen_probe.py configs/paper-tasks.yaml tasks.1.pair_encoding=siamese
"""

from __future__ import annotations

import sys
from contextlib import nullcontext

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression

from mtpeft.config import load_config
from mtpeft.evaluate.metrics import classification_scores
from mtpeft.evaluate.outputs import best_threshold
from mtpeft.run.build import assemble
from mtpeft.train.head_probe import ProbeWork, frozen_features

C_VALUES = (0.1, 1.0, 10.0)
"""Inverse L2 strengths tried; each is reported (the probe is a measurement, none is selected on test)."""


def probe_inputs(features: tuple[torch.Tensor, ...]) -> np.ndarray:
    """One row per example: the vector, or for a pair encoded apart the order-free ``[|u-v|, u*v]``."""
    if len(features) == 1:
        return features[0].numpy()
    u, v = (torch.nn.functional.normalize(side, dim=-1) for side in features)
    return torch.cat([(u - v).abs(), u * v], dim=-1).numpy()


def main(config_path: str, overrides: list[str]) -> None:
    config = load_config(config_path, overrides)
    built = assemble(config)
    for task, data in sorted(built.tasks.items()):
        if not data.spec.is_classification:
            continue
        metric = data.spec.metric
        split_inputs = {}
        for split in ("train", "validation", "test"):
            encoded = built.encoded[task][split]
            features = frozen_features(built.model, task, encoded, built.pad_id, config.train.eval_batch_size, "cpu",
                                       nullcontext, ProbeWork(), progress=True)
            split_inputs[split] = (probe_inputs(features.inputs), features.labels.numpy().astype(int))
        for c in C_VALUES:
            model = LogisticRegression(C=c, max_iter=5000).fit(*split_inputs["train"])
            scored = {}
            for split in ("validation", "test"):
                x, y = split_inputs[split]
                scored[split] = (y, model.predict_proba(x)[:, 1])
            threshold = best_threshold(*scored["validation"], metric)
            val, test = (classification_scores(y, (p >= threshold).astype(int))[metric] for y, p in scored.values())
            print(f"{task}: C={c}: validation {metric} {val:.4f}, test {test:.4f}")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2:])
