"""Distributed training for real: two CPU processes under ``torchrun`` (gloo) form one process group, share
the work, and end in the same place as one process that accumulates the same global batch; a kill -9 of both
processes followed by ``--resume`` finishes exactly as the uninterrupted two-process run."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import torch
from safetensors.torch import load_file

from mtpeft.config import load_config
from mtpeft.errors import ConfigError
from mtpeft.models.zoo import resolve_model
from mtpeft.run.files import RunFiles, is_complete
from mtpeft.train import train
from mtpeft.train.checkpoint import load_checkpoint

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tiny-bert without dropout (so one process and two can compute the same thing) and a small binary task."""
    root = tmp_path_factory.mktemp("ddp")
    model = root / "tiny-bert-no-dropout"
    shutil.copytree(resolve_model("tiny-bert"), model)
    settings = json.loads((model / "config.json").read_text())
    settings.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    (model / "config.json").write_text(json.dumps(settings))
    rows = []
    for i in range(96):
        body = f"strcpy(buf, input_{i});" if i % 2 else f"strncpy(buf, input_{i}, sizeof(buf) - 1);"
        rows.append({"func": f"void handler_{i}(char *input_{i}) {{ char buf[16]; {body} }}", "target": i % 2,
                     "idx": i})
    (root / "overflow.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


def write_config(workspace: Path, name: str, epochs: int = 3, grad_accum: int = 1) -> Path:
    """Two tasks, round robin: a binary task and code search with odd-sized evaluation splits (an uneven end
    for two processes); 18 steps per epoch, so two processes drop none (an odd last step is left out). The heads
    are fitted first (``probe_epochs``): its vectors are computed in shares and gathered, like evaluation's."""
    path = workspace / f"{name}.yaml"
    path.write_text(f"""name: {name}
model: {workspace / 'tiny-bert-no-dropout'}
method: lora
method_args: {{r: 4, alpha: 8}}
head_dropout: 0.0
tasks:
  - {{name: overflow, kind: binary, source: devign, path: {workspace / 'overflow.jsonl'}, max_examples: {{train: 72}}}}
  - {{name: search, max_examples: {{train: 32, validation: 15, test: 15}}}}
train: {{epochs: {epochs}, batch_size: 4, grad_accum: {grad_accum}, lr: 0.01, precision: fp32, max_length: 48,
        checkpoint_every: 4, log_every: 1, probe_epochs: 2}}
output_dir: {workspace / name}
""")
    return path


def torchrun(config: Path, *flags: str) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
            "-m", "mtpeft", "train", str(config), *flags]


def launch_env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def two_process_run(workspace: Path) -> Path:
    done = subprocess.run(torchrun(write_config(workspace, "ddp")), env=launch_env(), capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return workspace / "ddp"


def train_rows(run_dir: Path) -> list[dict]:
    return [r for r in map(json.loads, (run_dir / "train_log.jsonl").read_text().splitlines()) if r["event"] == "train"]


def test_two_processes_form_one_run_written_once(two_process_run: Path) -> None:
    assert is_complete(two_process_run)
    assert all(path.exists() for path in RunFiles(two_process_run).required())
    ledger = json.loads((two_process_run / "ledger.json").read_text())
    assert ledger["run_info"]["processes"] == 2
    steps = [r["step"] for r in train_rows(two_process_run)]
    assert steps == list(range(1, len(steps) + 1))  # one log line per optimiser step: only rank 0 wrote
    per_process = [p["counters"] for p in load_checkpoint(two_process_run / "checkpoints" / "last.pt")["processes"]]
    assert len(per_process) == 2 and per_process[0]["examples"] > 0
    assert per_process[0]["examples_per_task"].keys() == per_process[1]["examples_per_task"].keys()
    assert ledger["train_info"]["examples"] == per_process[0]["examples"] + per_process[1]["examples"]


def test_two_processes_equal_one_process_with_the_global_batch(two_process_run: Path, workspace: Path) -> None:
    """Each process trains every other step of the plan and gradients are averaged: one process that
    accumulates two steps per optimiser step sees the same data per update and must reach the same weights."""
    single = train(load_config(write_config(workspace, "single", grad_accum=2)), progress=False)
    a, b = (json.loads((run / "ledger.json").read_text())["train_info"] for run in (two_process_run, single))
    assert a["optimizer_steps"] == b["optimizer_steps"]
    assert a["examples_per_task"] == b["examples_per_task"]  # no step trained twice, none skipped
    assert a["real_tokens"] == b["real_tokens"]
    for file in ("adapter/adapter_model.safetensors", "heads.safetensors"):
        ours, theirs = load_file(two_process_run / file), load_file(single / file)
        assert ours.keys() == theirs.keys()
        for key in ours:
            torch.testing.assert_close(ours[key], theirs[key], rtol=1e-4, atol=1e-5, msg=f"{file}: {key}")
    ma, mb = (json.loads((run / "metrics.json").read_text()) for run in (two_process_run, single))
    for task in ("overflow", "search"):
        for split in ("validation", "test"):
            for metric, value in mb["tasks"][task][split].items():
                assert ma["tasks"][task][split][metric] == pytest.approx(value, abs=1e-3), (task, split, metric)
    for split in ("validation", "test"):  # evaluation shared out and gathered: every example once, in order
        rows = [json.loads(line) for line in (two_process_run / "predictions" / f"search.{split}.jsonl").open()]
        reference = [json.loads(line) for line in (single / "predictions" / f"search.{split}.jsonl").open()]
        assert [r["id"] for r in rows] == [r["id"] for r in reference] and len(rows) == 15
        assert [r["rank"] for r in rows] == [r["rank"] for r in reference]


def test_kill_both_processes_then_resume_equals_uninterrupted(two_process_run: Path, workspace: Path) -> None:
    config = write_config(workspace, "victim")
    victim = workspace / "victim"
    process = subprocess.Popen(torchrun(config), env=launch_env(), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    log = victim / "train_log.jsonl"
    while time.time() < deadline and process.poll() is None:
        if log.is_file() and len(train_rows(victim)) >= 10:  # past the checkpoint at step 8
            break
        time.sleep(0.05)
    assert process.poll() is None, "training finished (or failed) before it could be killed; make it longer"
    ranks = psutil.Process(process.pid).children(recursive=True)  # torchrun starts them in their own sessions
    assert len(ranks) >= 2
    for victim_process in [psutil.Process(process.pid), *ranks]:
        victim_process.send_signal(signal.SIGKILL)
    process.wait()
    psutil.wait_procs(ranks, timeout=30)
    assert not is_complete(victim)
    with pytest.raises(ConfigError, match="made by 2 process"):  # each process's share depends on the count
        train(load_config(config), resume=True, progress=False)
    done = subprocess.run(torchrun(config, "--resume"), env=launch_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "resuming" in done.stdout
    a, b = (json.loads((run / "metrics.json").read_text()) for run in (two_process_run, victim))
    assert a["tasks"] == b["tasks"]
    losses = [[r["losses"] for r in train_rows(run)] for run in (two_process_run, victim)]
    assert losses[0] == losses[1]

