"""The CLI end to end with typer's CliRunner: exit codes and messages a user sees."""

from __future__ import annotations

import json
import shutil

import pytest
from typer.testing import CliRunner

from mtpeft.cli import app

runner = CliRunner()


def test_models_lists_installed_zoo():
    result = runner.invoke(app, ["models"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    line = next(line for line in result.stdout.splitlines() if "minilm" in line)
    assert "yes" in line and "MIT" in line


def test_data_list_shows_readers_and_tasks():
    result = runner.invoke(app, ["data", "list"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for name in ("bigvul", "devign", "bcb-csv", "bcb-codexglue", "flakeflagger", "csn", "jsonl", "vulnerability"):
        assert name in result.stdout


def test_tables_keep_every_cell_whole_when_piped():
    result = runner.invoke(app, ["data", "list"], env={"COLUMNS": "60"})  # not a terminal, and narrow
    assert result.exit_code == 0
    assert "…" not in result.stdout
    assert "Are these two Java functions clones?" in result.stdout  # a long cell, on one line


def test_methods_lists_capabilities_from_the_registry():
    from mtpeft.methods import METHODS

    rows = json.loads(runner.invoke(app, ["methods", "--json"]).stdout)
    assert [r["method"] for r in rows] == METHODS.names()
    lora = next(r for r in rows if r["method"] == "lora")
    assert lora["mergeable"] and lora["default_targets"]["llama"] == ["q_proj", "v_proj"]
    assert [r["method"] for r in rows if not r["generation"]] == ["prefix", "prompt"]


@pytest.mark.parametrize("command", [["models"], ["data", "list"], ["methods"]])
def test_json_output_holds_what_the_table_shows(command):
    table = runner.invoke(app, command).stdout
    data = json.loads(runner.invoke(app, [*command, "--json"]).stdout)
    rows = data["sources"] if command == ["data", "list"] else data
    for row in rows:
        assert str(next(iter(row.values()))) in table


def test_config_error_exits_2_with_message(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ntasks:\n  - name: bug\ntrain:\n  lr: fast\n")
    result = runner.invoke(app, ["train", str(bad)])
    assert result.exit_code == 2
    assert f"{bad}:5: train.lr: Input should be a valid number" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(("content", "where"), [
    (b"name: x\nmodel: caf\xe9\n", "line 2 is not UTF-8 text (byte 0xe9)"),
    (bytes(range(256)), "line 2 is not UTF-8 text (byte 0x80)"),  # byte 10 is a newline
])
def test_a_config_that_is_not_text_exits_2_naming_the_line(tmp_path, content, where):
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(content)
    result = runner.invoke(app, ["train", str(bad)])
    assert result.exit_code == 2 and f"{bad}: {where}" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(("settings", "message"), [
    ("model: tiny-llama\npooling: pooler\n", "pooling: 'pooler' needs a backbone with a pooler"),
    ("model: tiny-llama\ntrain: {max_length: 8}\n",
     "train.max_length is 8; shorten the task's instruction or raise train.max_length"),
])
def test_settings_the_model_cannot_honour_exit_2(tmp_path, tiny_jsonl_task, settings, message):
    cfg = tmp_path / "c.yaml"
    task = ("{name: summarization}" if "max_length" in settings
            else f"{{name: overflow, kind: binary, source: devign, path: {tiny_jsonl_task}}}")
    cfg.write_text(f"name: x\n{settings}tasks:\n  - {task}\n")
    extra = ["tasks.0.max_examples={train: 8, validation: 8, test: 8}",
             "tasks.0.instruction=Summarize the function above in one short English sentence please."]
    result = runner.invoke(app, ["train", str(cfg), f"output_dir={tmp_path / 'run'}",
                                 *(extra if "max_length" in settings else [])])
    assert result.exit_code == 2 and message in result.stderr and "Traceback" not in result.stderr, result.stderr


def test_unknown_reader_exits_2_with_valid_names(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("name: x\ntasks:\n  - name: clone\n    source: bcb\n    path: x\n")
    result = runner.invoke(app, ["data", "stats", str(cfg), "--no-tokenizer"])
    assert result.exit_code == 2
    assert "unknown source 'bcb'; valid:" in result.stderr and "bcb-csv" in result.stderr


def test_missing_data_folder_exits_2(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("name: x\ntasks:\n  - name: flakiness\n    path: nowhere\n")
    result = runner.invoke(app, ["data", "stats", str(cfg), "--no-tokenizer"])
    assert result.exit_code == 2 and "nowhere: no such folder" in result.stderr


@pytest.mark.slow
def test_train_then_eval_through_the_cli(tmp_path, tiny_jsonl_task):
    cfg = tmp_path / "run.yaml"
    cfg.write_text(f"""name: cli
model: tiny-bert
method: lora
method_args: {{r: 4}}
tasks:
  - {{name: overflow, kind: binary, source: devign, path: {tiny_jsonl_task}}}
train: {{epochs: 1, batch_size: 8, precision: fp32, max_length: 48}}
output_dir: {tmp_path / "run"}
""")
    result = runner.invoke(app, ["train", str(cfg), "train.lr=1e-2"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.stderr
    assert "overflow" in result.stdout and "trainable" in result.stdout
    stored = json.loads((tmp_path / "run" / "metrics.json").read_text())
    again = runner.invoke(app, ["eval", str(tmp_path / "run")], env={"COLUMNS": "200"})
    assert again.exit_code == 0
    assert f"{stored['tasks']['overflow']['test']['f1']:.4f}" in again.stdout
    as_json = json.loads(runner.invoke(app, ["eval", str(tmp_path / "run"), "--json"]).stdout)
    assert as_json["tasks"]["overflow"]["test"] == stored["tasks"]["overflow"]["test"]
    rerun = runner.invoke(app, ["train", str(cfg)])
    assert rerun.exit_code == 2 and "--resume" in rerun.stderr

    # nothing of a finished run is deleted or rewritten before every check has passed
    files = {p: p.read_bytes() for p in (tmp_path / "run").rglob("*") if p.is_file()}
    unknown = runner.invoke(app, ["train", str(cfg), "--overwrite", "model=minlm"])
    assert unknown.exit_code == 2 and "minlm" in unknown.stderr and "Traceback" not in unknown.stderr
    finished = runner.invoke(app, ["train", str(cfg), "--resume", "train.lr=1e-3"])
    assert finished.exit_code == 2 and "the run is finished" in finished.stderr
    assert {p: p.read_bytes() for p in (tmp_path / "run").rglob("*") if p.is_file()} == files

    # a run killed before its first checkpoint resumes only with its own config
    (tmp_path / "run" / "run.json").write_text('{"status": "training"}')
    shutil.rmtree(tmp_path / "run" / "checkpoints")
    changed = runner.invoke(app, ["train", str(cfg), "--resume", "train.max_length=64"])
    assert changed.exit_code == 2 and "started with another config" in changed.stderr
    assert (tmp_path / "run" / "config.yaml").read_bytes() == files[tmp_path / "run" / "config.yaml"]
