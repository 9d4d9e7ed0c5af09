"""Generation tasks in a multi-task run, end to end on tiny-llama: one shared LoRA module learns a
generation task next to a classification task, beats the model before training, and a reloaded run
scores the same; the CodeXGLUE refinement and translation data evaluate end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mtpeft.config import config_from_dict
from mtpeft.errors import ConfigError
from mtpeft.run.artifacts import load_trained
from mtpeft.run.reevaluate import evaluate_run
from mtpeft.serve.predict_file import predict_file
from mtpeft.serve.predictor import Predictor
from mtpeft.train import train
from tests.train.conftest import crash_after_step

from ..conftest import ROOT, write_jsonl

pytestmark = pytest.mark.slow


def _losses(run_dir: Path, task: str) -> list[float]:
    rows = [json.loads(line) for line in (run_dir / "train_log.jsonl").read_text().splitlines()]
    return [r["losses"][task] for r in rows if r["event"] == "train"]


def test_generation_learns_next_to_classification_and_reloads(tmp_path, tiny_jsonl_task):
    # SmolLM2, not a tiny random model: a random LM head gives near-uniform logits that a few steps cannot move
    config = config_from_dict({
        "name": "gen", "model": "smollm2-135m", "method": "lora", "method_args": {"r": 8, "alpha": 16},
        "tasks": [
            {"name": "overflow", "kind": "binary", "source": "devign", "path": str(tiny_jsonl_task),
             "metric": "accuracy"},
            {"name": "summarization", "reader_args": {"max_lines": 12}, "max_target_length": 12,
             "max_examples": {"train": 96, "validation": 12, "test": 24}},
        ],
        "train": {"epochs": 2, "batch_size": 8, "lr": 1e-3, "max_length": 80, "log_every": 1},
        "output_dir": str(tmp_path / "run"),
    })
    run = train(config, progress=False)
    curve = _losses(run, "summarization")
    quarter = len(curve) // 4
    assert sum(curve[-quarter:]) / quarter < sum(curve[:quarter]) / quarter - 0.2, curve

    metrics = json.loads((run / "metrics.json").read_text())["tasks"]["summarization"]
    assert set(metrics["test"]) == {"bleu", "smoothed_bleu", "exact_match"}  # English target: no code metrics
    assert metrics["test"]["smoothed_bleu"] > metrics["untrained"]["test"]["smoothed_bleu"], metrics
    assert metrics["baseline"]["test"] == metrics["untrained"]["test"]["smoothed_bleu"]
    rows = [json.loads(line) for line in (run / "predictions" / "summarization.test.jsonl").read_text().splitlines()]
    before = (run / "predictions" / "summarization.test.untrained.jsonl").read_text().splitlines()
    assert len(rows) == len(before) == 24 and all(set(r) == {"id", "prediction", "reference"} for r in rows)

    again = evaluate_run(run).as_json()["tasks"]  # rebuilt from the run directory alone: greedy decoding reproduces
    assert again["summarization"]["test"] == pytest.approx(metrics["test"])
    predictor = Predictor.from_run(run)  # the classification task is served; the generation task says why not
    assert predictor.check_task("overflow")
    with pytest.raises(ConfigError, match="generation task, which the HTTP service does not decode"):
        predictor.check_task("summarization")


def test_refinement_and_translation_read_the_shared_data_and_evaluate(tmp_path, shared):
    caps = {"train": 24, "validation": 8, "test": 12}
    config = config_from_dict({
        "name": "code-gen", "model": "tiny-llama", "method": "lora", "method_args": {"r": 4, "alpha": 8},
        "tasks": [{"name": "refinement", "max_target_length": 16, "max_examples": caps},
                  {"name": "translation", "max_target_length": 16, "max_examples": caps}],
        "train": {"epochs": 1, "batch_size": 8, "max_length": 96, "precision": "fp32"},
        "output_dir": str(tmp_path / "run"), "base_dir": str(ROOT),
    })
    run = train(config, progress=False)
    metrics = json.loads((run / "metrics.json").read_text())["tasks"]
    for task in ("refinement", "translation"):
        assert set(metrics[task]["test"]) == {"bleu", "smoothed_bleu", "exact_match", "codebleu"}
        copy = metrics[task]["lexical"]  # copying the input: a bug fix is close to the bug; a translation is not
        assert copy["method"] == "copy the input"
        assert (copy["test"]["bleu"] > 0.5) == (task == "refinement") and copy["test"]["exact_match"] == 0.0
        assert all(0.0 <= v <= 1.0 for v in metrics[task]["test"].values())
        rows = [json.loads(x) for x in (run / "predictions" / f"{task}.test.jsonl").read_text().splitlines()]
        assert len(rows) == 12 and all(r["reference"] for r in rows)
    ledger = json.loads((run / "ledger.json").read_text())
    assert ledger["train_info"]["examples_per_task"] == {"refinement": 24, "translation": 24}


def test_encoder_decoder_trains_generation_and_classification_over_one_module(tmp_path, tiny_jsonl_task):
    config = config_from_dict({
        "name": "t5", "model": "tiny-t5", "method": "lora", "method_args": {"r": 4, "alpha": 8},
        "tasks": [
            {"name": "overflow", "kind": "binary", "source": "devign", "path": str(tiny_jsonl_task)},
            {"name": "summarization", "reader_args": {"max_lines": 12}, "max_target_length": 8,
             "max_examples": {"train": 48, "validation": 8, "test": 8}},
        ],
        "train": {"epochs": 3, "batch_size": 8, "lr": 2e-2, "max_length": 64, "precision": "fp32", "log_every": 1},
        "output_dir": str(tmp_path / "run"),
    })
    run = train(config, progress=False)
    curve = _losses(run, "summarization")
    assert min(curve[-3:]) < curve[0], curve  # the decoder's loss moves through the shared LoRA
    metrics = json.loads((run / "metrics.json").read_text())["tasks"]
    assert set(metrics["summarization"]["test"]) == {"bleu", "smoothed_bleu", "exact_match"}
    again = evaluate_run(run).as_json()["tasks"]
    for task in ("overflow", "summarization"):
        assert again[task]["test"] == pytest.approx(metrics[task]["test"])
    flops = json.loads((run / "ledger.json").read_text())["train_info"]["flops"]
    assert flops["total"] > 0


def test_a_crashed_generation_run_resumes_to_the_same_result(tmp_path, tiny_jsonl_task, monkeypatch):
    def make(folder: str):
        return config_from_dict({
            "name": "r", "model": "tiny-llama", "method": "lora", "method_args": {"r": 4, "alpha": 8},
            "tasks": [{"name": "overflow", "kind": "binary", "source": "devign", "path": str(tiny_jsonl_task)},
                      {"name": "summarization", "reader_args": {"max_lines": 12}, "max_target_length": 6,
                       "max_examples": {"train": 48, "validation": 8, "test": 8}}],
            "train": {"epochs": 2, "batch_size": 8, "max_length": 48, "precision": "fp32", "checkpoint_every": 3},
            "output_dir": str(tmp_path / folder),
        })

    reference = train(make("a"), progress=False)
    with pytest.raises(KeyboardInterrupt), crash_after_step(5):  # last checkpoint: step 3
        train(make("b"), progress=False)
    import mtpeft.train.loop as loop_module

    def fail(*_args, **_kwargs):
        raise AssertionError("the untrained baseline must come from the checkpoint, not be decoded again")

    monkeypatch.setattr(loop_module, "evaluate_untrained", fail)
    resumed = train(make("b"), resume=True, progress=False)
    a, b = (json.loads((r / "metrics.json").read_text()) for r in (reference, resumed))
    assert a["tasks"] == b["tasks"]


def test_full_fine_tuning_with_generation_reloads_its_own_weights(tmp_path):
    config = config_from_dict({
        "name": "full", "model": "tiny-llama", "method": "full",
        "tasks": [{"name": "summarization", "reader_args": {"max_lines": 12}, "max_target_length": 6,
                   "max_examples": {"train": 32, "validation": 8, "test": 8}}],
        "train": {"epochs": 1, "batch_size": 8, "lr": 1e-2, "max_length": 48, "precision": "fp32"},
        "output_dir": str(tmp_path / "run"),
    })
    run = train(config, progress=False)
    metrics = json.loads((run / "metrics.json").read_text())["tasks"]["summarization"]
    again = evaluate_run(run).as_json()["tasks"]["summarization"]  # the saved model, not the pretrained one, decodes
    assert again["test"] == pytest.approx(metrics["test"])
    rows = (run / "predictions" / "summarization.test.jsonl").read_text()
    assert rows != (run / "predictions" / "summarization.test.untrained.jsonl").read_text()

    # `mtpeft predict` on the test inputs writes what the run's own evaluation wrote
    examples = load_trained(run).built.tasks["summarization"].splits["test"]
    inputs = write_jsonl(tmp_path / "in.jsonl", [{"id": ex.id, "code": ex.text} for ex in examples])
    assert predict_file(run, "summarization", str(inputs), str(tmp_path / "out.jsonl"), batch_size=3) == 8
    answers = [json.loads(x) for x in (tmp_path / "out.jsonl").read_text().splitlines()]
    expected = {r["id"]: r["prediction"] for r in map(json.loads, rows.splitlines())}
    assert [a["text"] for a in answers] == [expected[a["id"]] for a in answers]
