"""Windows, siamese pairs and class weighting end to end: a run trains with them, reloads to the same scores,
answers `predict` and the server exactly as its evaluation did, and counts the windows' extra tokens."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from mtpeft.config import config_from_dict
from mtpeft.run import evaluate_run
from mtpeft.serve import Predictor
from mtpeft.serve.schemas import CodeInput, PairInput
from mtpeft.train import train
from tests.conftest import write_jsonl
from tests.serve.conftest import pair_rows, search_rows

pytestmark = pytest.mark.slow


def long_binary_rows(n: int) -> list[dict]:
    filler = " ".join(f"buf[{k}] = 0;" for k in range(12))
    return [{"text": f"void f{i}(char *s) {{ char buf[8]; {filler} {'strcpy(buf, s);' if i % 2 else 'puts(s);'} }}",
             "label": i % 2} for i in range(48)]


def config(tmp_path, long_inputs: str):
    data = {"binary": write_jsonl(tmp_path / "binary.jsonl", long_binary_rows(48)),
            "pair": write_jsonl(tmp_path / "pair.jsonl", pair_rows(48)),
            "search": write_jsonl(tmp_path / "search.jsonl", search_rows(48))}
    windows = {"long_inputs": long_inputs} | ({"max_windows": 4, "window_pooling": "max"}
                                              if long_inputs == "windows" else {})
    return config_from_dict({
        "name": f"long-{long_inputs}", "model": "tiny-bert", "method": "lora", "method_args": {"r": 4, "alpha": 8},
        "tasks": [
            {"name": "overflow", "kind": "binary", "source": "jsonl", "path": str(data["binary"]), **windows,
             "pos_weight": "auto", "oversample_positives": 2.0},
            {"name": "same", "kind": "pair", "source": "jsonl", "path": str(data["pair"]),
             "reader_args": {"text_field": "a", "text_pair_field": "b"}, "pair_encoding": "siamese", **windows,
             "loss": "focal"},
            {"name": "find", "kind": "retrieval", "source": "jsonl", "path": str(data["search"]), **windows,
             "reader_args": {"text_field": "query", "text_pair_field": "code", "label_field": None}},
        ],
        "train": {"epochs": 2, "batch_size": 8, "lr": 1e-2, "max_length": 16, "precision": "fp32"},
        "output_dir": str(tmp_path / f"run-{long_inputs}"),
    })


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("long")
    return {mode: train(config(root, mode), progress=False) for mode in ("truncate", "windows")}


def test_windows_cost_extra_tokens_and_the_ledger_counts_them(runs):
    ledgers = {mode: json.loads((run / "ledger.json").read_text())["train_info"] for mode, run in runs.items()}
    assert ledgers["windows"]["real_tokens"] > 1.5 * ledgers["truncate"]["real_tokens"]
    assert ledgers["windows"]["flops"]["total"] > 1.5 * ledgers["truncate"]["flops"]["total"]


def test_a_windowed_siamese_run_reloads_to_the_same_scores(runs):
    stored = json.loads((runs["windows"] / "metrics.json").read_text())["tasks"]
    again = evaluate_run(runs["windows"], split="test").as_json()["tasks"]
    for task in ("overflow", "same", "find"):
        assert again[task]["test"] == stored[task]["test"], task
    config = yaml.safe_load((runs["windows"] / "config.yaml").read_text())
    for entry in config["tasks"]:  # the data read again from its files: encoded as the run's training encoded it
        reread = evaluate_run(runs["windows"], task=entry["name"], path=entry["path"], split="test").as_json()
        assert reread["tasks"][entry["name"]]["test"] == stored[entry["name"]]["test"], entry["name"]


def test_predict_and_serve_answer_as_the_evaluation_did(runs):
    run = runs["windows"]
    predictor = Predictor.from_run(run)
    for task, make in (("overflow", lambda r: CodeInput(code=r["text"])),
                       ("same", lambda r: PairInput(code1=r["a"], code2=r["b"]))):
        rows = [json.loads(line) for line in (run / "predictions" / f"{task}.test.jsonl").read_text().splitlines()]
        source = long_binary_rows(48) if task == "overflow" else pair_rows(48)
        inputs = [make(source[int(r["id"].rsplit(":", 1)[-1]) - 1]) for r in rows]
        items = predictor.encode(task, inputs)
        assert all(len(item.inputs) == (2 if task == "same" else 1) for item in items)
        if task == "overflow":
            assert max(len(item.inputs[0]) for item in items) > 1  # windows, not one truncated row
        answers = [predictor.classify(item, out) for item, out in zip(items, predictor.forward(items), strict=True)]
        np.testing.assert_allclose([a["probability"] for a in answers], [r["probability"] for r in rows],
                                   rtol=1e-5, atol=1e-6)
