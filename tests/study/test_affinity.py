"""Cheap affinity estimates: the TAG lookahead against a hand computation, cosine, and a warm-up run."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch

from mtpeft.config import config_from_dict
from mtpeft.data.collate import collate
from mtpeft.run.build import assemble
from mtpeft.study.affinity import cosine_matrix, estimate_affinity, lookahead_affinity, task_gradients

SEED = 7


def two_task_config(tmp_path: Path, tiny_task: Path, method: str = "lora"):
    task = {"kind": "binary", "source": "devign", "path": str(tiny_task), "metric": "accuracy"}
    return config_from_dict({
        "name": "affinity", "model": "tiny-bert", "method": method,
        "method_args": {"r": 4, "alpha": 8} if method == "lora" else {},
        "tasks": [{"name": "first", **task}, {"name": "second", **task, "reader_args": {}}],
        "train": {"batch_size": 8, "lr": 1e-2, "max_length": 48, "precision": "fp32", "seed": 3},
        "output_dir": str(tmp_path / "run")})


@pytest.mark.parametrize(("method", "lr"), [("lora", 20.0), ("full", 0.1)])  # full: larger steps overshoot
def test_lookahead_equals_a_hand_computation(tmp_path: Path, tiny_jsonl_task: Path, method: str, lr: float) -> None:
    built = assemble(two_task_config(tmp_path, tiny_jsonl_task, method))
    model, tasks = built.model, ["first", "second"]
    batches = {t: collate(built.encoded[t]["train"], list(range(k, k + 8)), built.pad_id) for k, t in enumerate(tasks)}
    shared = [p for p in model.encoder.parameters() if p.requires_grad]
    torch.manual_seed(SEED)  # dropout is on for gradients: the hand computation replays the same draws
    grads, _ = task_gradients(model, batches, shared)
    before = [p.detach().clone() for p in shared]
    got = lookahead_affinity(model, batches, shared, grads, lr, tasks)
    assert all(torch.equal(p, b) for p, b in zip(shared, before, strict=True))  # weights restored exactly

    model.eval()
    for j, b in enumerate(tasks):
        # by hand: a copy of the model, a plain SGD step on task b's loss gradient, then every task's loss
        # (large steps, so that the tiny model's losses move measurably)
        moved = copy.deepcopy(model)
        moved_shared = [p for p in moved.encoder.parameters() if p.requires_grad]
        moved.train()
        torch.manual_seed(SEED)
        for earlier in tasks[:j]:
            moved(earlier, batches[earlier])
        loss_b = moved(b, batches[b])["loss"]
        hand_grads = torch.autograd.grad(loss_b, moved_shared, allow_unused=True)  # full: the unused pooler
        moved.eval()
        with torch.no_grad():
            for p, g in zip(moved_shared, hand_grads, strict=True):
                if g is not None:
                    p -= lr * g
            for i, a in enumerate(tasks):
                expected = 1 - float(moved(a, batches[a])["loss"]) / float(model(a, batches[a])["loss"])
                assert got[i, j] == pytest.approx(expected, abs=1e-6)  # 1 - a ratio of fp32 losses
    assert np.all(np.diag(got) > 1e-4)  # a step on a task's own gradient lowers its own loss, measurably


def test_cosine_of_known_vectors() -> None:
    c = cosine_matrix([torch.tensor([1.0, 0.0]), torch.tensor([1.0, 1.0]), torch.tensor([-2.0, 0.0])])
    np.testing.assert_allclose(c, [[1, 2**-0.5, -1], [2**-0.5, 1, -(2**-0.5)], [-1, -(2**-0.5), 1]], atol=1e-6)


def test_warm_up_estimate_is_complete_and_costed(tmp_path: Path, tiny_jsonl_task: Path) -> None:
    estimate = estimate_affinity(two_task_config(tmp_path, tiny_jsonl_task), steps=3, progress=False)
    assert estimate.tasks == ["first", "second"] and estimate.steps == 3
    assert estimate.cosine.shape == estimate.lookahead.shape == (2, 2)
    np.testing.assert_allclose(np.diag(estimate.cosine), 1, atol=1e-5)
    assert np.allclose(estimate.cosine, estimate.cosine.T, atol=1e-6)
    assert estimate.flops > 0 and estimate.time_s > 0
