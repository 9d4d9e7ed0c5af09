"""The paper's four backbones, as tiny random models of the same architectures (no download): UniXcoder
(RoBERTa, pooler output), CodeT5+ (the encoder of a T5), DeepSeek-Coder (Llama) and Qwen2.5-Coder (Qwen2), each
loaded, trained and saved by `mtpeft train` and reloaded from disk by `mtpeft eval` to the same scores."""

from __future__ import annotations

import json

import pytest

from mtpeft.config import config_from_dict
from mtpeft.models.backbone import load_backbone
from mtpeft.run.reevaluate import evaluate_run
from mtpeft.train import train

pytestmark = pytest.mark.slow

PAPER_ARCHITECTURES = [  # (tiny model, its model_type, the paper's pooling for it)
    ("tiny-roberta", "roberta", "pooler"),
    ("tiny-t5", "t5", "mean"),
    ("tiny-llama", "llama", "mean"),
    ("tiny-qwen2", "qwen2", "mean"),
]


@pytest.mark.parametrize(("model", "model_type", "pooling"), PAPER_ARCHITECTURES)
@pytest.mark.parametrize("method", ["lora", "adapter"])
def test_paper_architecture_trains_saves_and_reloads(model, model_type, pooling, method, tmp_path, tiny_jsonl_task):
    config = config_from_dict({
        "name": "arch", "model": model, "pooling": pooling, "method": method,
        "tasks": [{"name": "overflow", "kind": "binary", "source": "devign", "path": str(tiny_jsonl_task)},
                  {"name": "search", "max_examples": {"train": 32, "validation": 16, "test": 16}}],
        "train": {"epochs": 1, "batch_size": 8, "max_length": 48, "precision": "fp32"},
        "output_dir": str(tmp_path / "run"),
    })
    run = train(config, progress=False)
    ledger = json.loads((run / "ledger.json").read_text())
    assert ledger["run_info"]["model"] == model and ledger["train_info"]["optimizer_steps"] > 0
    assert 0 < ledger["parameters"]["method_trainable"] < ledger["parameters"]["backbone"] / 2
    assert load_backbone(model).model_type == model_type
    stored = json.loads((run / "metrics.json").read_text())["tasks"]
    again = evaluate_run(run, split="test").as_json()["tasks"]
    for task in ("overflow", "search"):
        assert again[task]["test"] == stored[task]["test"], task
