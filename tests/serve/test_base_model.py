"""A run trained from a model folder, opened where that folder is gone: MTPEFT_BASE_MODEL points at the base
weights for mtpeft, and plain peft opens the adapter on any copy of them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from mtpeft.config import config_from_dict
from mtpeft.errors import RunError
from mtpeft.models.zoo import resolve_model
from mtpeft.run.base_model import BASE_MODEL_ENV
from mtpeft.serve import predict_file
from mtpeft.train import train
from tests.conftest import write_jsonl
from tests.serve.conftest import MAX_LENGTH, binary_rows

CODE = ["void f(char *s) { char b[8]; strcpy(b, s); }", "void g(char *s) { char b[8]; strncpy(b, s, 7); }"]


def probabilities(run: Path, folder: Path) -> list[float]:
    """``mtpeft predict`` on two functions."""
    answers = folder / "answers.jsonl"
    answers.unlink(missing_ok=True)
    predict_file(run, "overflow", str(write_jsonl(folder / "inputs.jsonl", [{"code": c} for c in CODE])),
                 str(answers))
    return [json.loads(line)["probability"] for line in answers.read_text().splitlines()]


@pytest.fixture(scope="module")
def moved_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[float]]:
    """A run trained from a folder copy of tiny-bert; then the run is copied elsewhere and the folder moved."""
    root = tmp_path_factory.mktemp("base-model")
    base = root / "base"
    shutil.copytree(resolve_model("tiny-bert"), base)
    config = config_from_dict({
        "name": "from-folder", "model": str(base), "method": "lora", "method_args": {"r": 4, "alpha": 8},
        "tasks": [{"name": "overflow", "kind": "binary", "source": "jsonl",
                   "path": str(write_jsonl(root / "binary.jsonl", binary_rows(24)))}],
        "train": {"epochs": 1, "batch_size": 8, "max_length": MAX_LENGTH, "precision": "fp32"},
        "output_dir": str(root / "run"),
    })
    run = train(config, progress=False)
    before = probabilities(run, root)
    copied = shutil.copytree(run, root / "elsewhere" / "run")
    moved = base.rename(root / "moved-base")
    return copied, moved, before


def test_a_missing_base_folder_is_one_line_naming_the_variable(moved_run, monkeypatch, tmp_path: Path) -> None:
    run, _, _ = moved_run
    monkeypatch.delenv(BASE_MODEL_ENV, raising=False)
    with pytest.raises(RunError, match=f"config.yaml: model .* this machine does not have.*{BASE_MODEL_ENV}=PATH"):
        probabilities(run, tmp_path)


def test_the_variable_opens_the_copied_run_with_the_same_answers(moved_run, monkeypatch, tmp_path: Path) -> None:
    run, base, before = moved_run
    monkeypatch.setenv(BASE_MODEL_ENV, str(base))
    assert probabilities(run, tmp_path) == pytest.approx(before, abs=1e-6)
    monkeypatch.setenv(BASE_MODEL_ENV, str(base.parent / "nowhere"))
    with pytest.raises(RunError, match=f"{BASE_MODEL_ENV}=.*nowhere: no such model folder"):
        probabilities(run, tmp_path)


def test_plain_peft_opens_the_adapter_on_the_moved_base(moved_run) -> None:
    from peft import PeftModel
    from transformers import AutoModel

    run, base, _ = moved_run
    recorded = json.loads((run / "adapter" / "adapter_config.json").read_text())["base_model_name_or_path"]
    assert not Path(recorded).exists()  # the path it was trained from is gone
    model = PeftModel.from_pretrained(AutoModel.from_pretrained(base), run / "adapter").eval()
    lora = {k: v for k, v in model.state_dict().items() if "lora_" in k}
    assert lora and all(torch.isfinite(v).all() for v in lora.values())
