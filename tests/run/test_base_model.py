"""A run copied where its base model's recorded folder does not exist still opens: with --base-model, with
$MTPEFT_BASE_MODEL, through the zoo name, and in plain peft given the base; without any of them, one line that
names the missing folder and both ways out."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from mtpeft.cli import app
from mtpeft.config import config_from_dict
from mtpeft.errors import ModelError
from mtpeft.models.zoo import resolve_model
from mtpeft.run.artifacts import load_trained
from mtpeft.run.base_model import ENV, resolve_base
from mtpeft.train import train
from tests.conftest import write_jsonl
from tests.serve.conftest import binary_rows

runner = CliRunner()


@dataclass(frozen=True)
class Moved:
    """A finished run whose base model's folder was moved after training."""

    run: Path
    recorded: Path  # where the base was when the run trained: gone
    base: Path  # where it is now
    inputs: Path  # inputs of the run's binary task
    answers: str  # `mtpeft predict`'s answers to them before the move


@pytest.fixture(scope="module")
def moved(tmp_path_factory: pytest.TempPathFactory) -> Moved:
    """A tiny run trained on a base model's folder (not a zoo name), its answers, and the base moved elsewhere."""
    root = tmp_path_factory.mktemp("portable")
    base = root / "base"
    shutil.copytree(resolve_model("tiny-bert"), base)
    data = write_jsonl(root / "binary.jsonl", binary_rows(40))
    run = train(config_from_dict({
        "name": "portable", "model": str(base), "method": "lora", "method_args": {"r": 4, "alpha": 8},
        "tasks": [{"name": "overflow", "kind": "binary", "source": "jsonl", "path": str(data)}],
        "train": {"epochs": 1, "batch_size": 8, "max_length": 32, "precision": "fp32"},
        "output_dir": str(root / "run"),
    }), progress=False)
    inputs = write_jsonl(root / "in.jsonl", [{"code": r["text"], "id": i} for i, r in enumerate(binary_rows(4))])
    answers = runner.invoke(app, ["predict", str(run), "--task", "overflow", "--input", str(inputs)])
    assert answers.exit_code == 0, answers.stderr
    elsewhere = root / "elsewhere"
    shutil.move(base, elsewhere)
    return Moved(run, base, elsewhere, inputs, answers.stdout)


def copied(moved: Moved, tmp_path: Path) -> Path:
    """The run as another machine gets it: a copy in a folder of its own."""
    run = tmp_path / "copy"
    shutil.copytree(moved.run, run)
    return run


def test_the_run_records_its_base_as_an_absolute_folder(moved: Moved) -> None:
    ledger = json.loads((moved.run / "ledger.json").read_text())["run_info"]
    adapter = json.loads((moved.run / "adapter" / "adapter_config.json").read_text())
    assert ledger["model"] == ledger["model_source"] == adapter["base_model_name_or_path"] == str(moved.recorded)


def test_predict_opens_a_copied_run_with_the_option_or_the_variable(moved: Moved, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    run, args = copied(moved, tmp_path), ["--task", "overflow", "--input", str(moved.inputs)]
    monkeypatch.delenv(ENV, raising=False)
    given = runner.invoke(app, ["predict", str(run), *args, "--base-model", str(moved.base)])
    assert given.exit_code == 0, given.stderr
    assert given.stdout == moved.answers  # the same weights found elsewhere: the same answers
    monkeypatch.setenv(ENV, str(moved.base))
    from_env = runner.invoke(app, ["predict", str(run), *args])
    assert from_env.exit_code == 0, from_env.stderr
    assert from_env.stdout == moved.answers
    evaluated = runner.invoke(app, ["eval", str(run), "--json"])
    assert evaluated.exit_code == 0, evaluated.stderr


@pytest.mark.parametrize("command", ["predict", "eval", "serve", "export"])
def test_without_either_the_error_names_the_missing_folder_and_both_ways(moved: Moved, tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch,
                                                                         command: str) -> None:
    monkeypatch.delenv(ENV, raising=False)
    run = copied(moved, tmp_path)
    args = {"predict": ["--task", "overflow", "--input", str(moved.inputs)], "eval": [],
            "serve": ["--port", "8799"], "export": ["--format", "onnx", "--out", str(tmp_path / "onnx")]}[command]
    result = runner.invoke(app, [command, str(run), *args])
    assert result.exit_code == 2, (result.exception, result.stderr)
    assert result.stderr.startswith(f"error: {moved.recorded}: the base model of {run} is not on this machine")
    assert "--base-model PATH" in result.stderr and f"{ENV}=PATH" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_a_base_model_that_is_not_a_model_folder_is_named(moved: Moved, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, str(tmp_path))
    result = runner.invoke(app, ["predict", str(moved.run), "--task", "overflow", "--input", str(moved.inputs)])
    assert result.exit_code == 2 and result.stderr.startswith(f"error: {ENV}={tmp_path}: not a model folder")
    result = runner.invoke(app, ["eval", str(moved.run), "--base-model", str(tmp_path / "nope")])
    assert result.exit_code == 2 and result.stderr.startswith(f"error: --base-model {tmp_path / 'nope'}: not a model")


def test_order_option_variable_recorded_folder_zoo_name(moved: Moved, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    run, base = copied(moved, tmp_path), str(moved.base)
    monkeypatch.setenv(ENV, "tiny-bert")
    assert resolve_base(run, "anything", given=base) == base
    assert resolve_base(run, "anything") == "tiny-bert"
    monkeypatch.delenv(ENV)
    with pytest.raises(ModelError, match="not on this machine"):
        resolve_base(run, str(moved.recorded))  # neither the recorded folder nor the config's entry is here
    assert resolve_base(run, "tiny-bert") == "tiny-bert"  # the recorded folder is gone; the zoo has the name
    record(run, base)
    assert resolve_base(run, "tiny-bert") == base  # the recorded folder, where it exists
    record(run, "org/name")
    assert resolve_base(run, "org/name") == "org/name"  # a hub id is left to the HF cache, as in training


def record(run: Path, source: str) -> None:
    ledger = json.loads((run / "ledger.json").read_text())
    ledger["run_info"]["model_source"] = source
    (run / "ledger.json").write_text(json.dumps(ledger))


def test_plain_peft_opens_the_adapter_given_the_base(moved: Moved) -> None:
    from peft import PeftModel
    from transformers import AutoModel

    plain = PeftModel.from_pretrained(AutoModel.from_pretrained(moved.base), moved.run / "adapter").eval()
    ours = load_trained(moved.run, with_data=False, base_model=str(moved.base)).built
    batch = ours.backbone.tokenizer(["int main() { return 0; }"], return_tensors="pt")
    ours.model.encoder.eval()
    with torch.no_grad():
        torch.testing.assert_close(plain(**batch).last_hidden_state, ours.model.encoder(**batch).last_hidden_state)


def test_a_copied_full_fine_tuning_run_is_its_own_base(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """model/ holds every weight and the tokenizer: no --base-model needed once the base folder is gone."""
    base = tmp_path / "base"
    shutil.copytree(resolve_model("tiny-bert"), base)
    data = write_jsonl(tmp_path / "binary.jsonl", binary_rows(24))
    run = train(config_from_dict({
        "name": "whole", "model": str(base), "method": "full",
        "tasks": [{"name": "overflow", "kind": "binary", "source": "jsonl", "path": str(data)}],
        "train": {"epochs": 1, "batch_size": 8, "max_length": 32, "precision": "fp32"},
        "output_dir": str(tmp_path / "run"),
    }), progress=False)
    trained = load_trained(run, with_data=False).built.model.encoder.state_dict()
    shutil.rmtree(base)
    monkeypatch.delenv(ENV, raising=False)
    assert resolve_base(run, str(base)) == str(run / "model")
    reopened = load_trained(run, with_data=False).built.model.encoder.state_dict()
    assert trained.keys() == reopened.keys() and all(torch.equal(trained[k], reopened[k]) for k in trained)
