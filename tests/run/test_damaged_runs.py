"""A damaged run directory is a one-line error that names the damaged file, through the CLI, never a traceback."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from mtpeft.cli import app
from mtpeft.config import config_from_dict
from mtpeft.train import train

runner = CliRunner()


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("damaged")
    rows = [{"func": f"void f{i}(char *s) {{ {'strcpy(b, s);' if i % 2 else 'strncpy(b, s, 7);'} }}", "target": i % 2}
            for i in range(48)]
    data = root / "tiny.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = config_from_dict({
        "name": "damaged", "model": "tiny-bert", "method": "lora", "method_args": {"r": 4, "alpha": 8},
        "tasks": [{"name": "overflow", "kind": "binary", "source": "devign", "path": str(data)}],
        "train": {"epochs": 1, "batch_size": 8, "max_length": 32, "precision": "fp32"},
        "output_dir": str(root / "run"),
    })
    return train(config, progress=False)


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:100])


def other_rank(path: Path) -> None:
    config = json.loads(path.read_text())
    path.write_text(json.dumps({**config, "r": 8}))


DAMAGE: dict[str, tuple[str, Callable[[Path], None], str]] = {  # file, damage, what the message names
    "truncated adapter weights": ("adapter/adapter_model.safetensors", truncate, "adapter"),
    "random adapter weights": ("adapter/adapter_model.safetensors", lambda p: p.write_bytes(bytes(range(256)) * 8),
                               "adapter"),
    "adapter of another rank": ("adapter/adapter_config.json", other_rank, "adapter"),
    "corrupt adapter config": ("adapter/adapter_config.json", lambda p: p.write_text("{not json"), "adapter"),
    "truncated heads": ("heads.safetensors", truncate, "heads.safetensors"),
    "corrupt heads.json": ("heads.json", lambda p: p.write_text('{"tasks": '), "heads.json"),
    "heads.json of another shape": ("heads.json", lambda p: p.write_text('{"tasks": [1, 2]}'), "heads.json"),
    "corrupt metrics.json": ("metrics.json", lambda p: p.write_text("["), "metrics.json"),
}


@pytest.mark.parametrize("case", sorted(DAMAGE))
def test_eval_of_a_damaged_run_names_the_file(finished_run: Path, tmp_path: Path, case: str) -> None:
    name, damage, named = DAMAGE[case]
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    damage(run / name)
    result = runner.invoke(app, ["eval", str(run)])
    assert result.exit_code == 2, (result.exception, result.stderr)
    assert result.stderr.startswith(f"error: {run / named}: "), result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_resume_from_a_corrupt_checkpoint_names_it(finished_run: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    config = run / "config.yaml"
    config.write_text(config.read_text().replace(str(finished_run), str(run)))  # the copy trains into itself
    (run / "run.json").write_text('{"status": "training"}')  # killed: its checkpoint is what resume reads
    checkpoint = run / "checkpoints" / "last.pt"
    torch.save({"loop": {}}, checkpoint)
    truncate(checkpoint)
    result = runner.invoke(app, ["train", str(config), "--resume"])
    assert result.exit_code == 2 and f"{checkpoint}: the checkpoint" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("command", ["eval", "predict", "serve"])
def test_a_run_not_marked_complete_is_refused(finished_run: Path, tmp_path: Path, command: str) -> None:
    """Every file is there but run.json says training (a retraining killed midway): its files may mix two
    trainings, so nothing answers from it."""
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    (run / "run.json").write_text('{"status": "training"}')
    inputs = tmp_path / "in.jsonl"
    inputs.write_text('{"task": "overflow", "code": "int main() {}"}\n')
    args = {"eval": ["eval", str(run)], "predict": ["predict", str(run), "--task", "overflow", "--input", str(inputs)],
            "serve": ["serve", str(run), "--port", "8799"]}[command]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, (result.exception, result.stderr)
    assert result.stderr.startswith(f"error: {run / 'run.json'}: the run is not marked complete"), result.stderr
    assert "Traceback" not in result.stderr
