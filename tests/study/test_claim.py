"""Claims on study runs: one holder at a time, a dead holder's claim is taken over, a live one's never, and a
study process skips the runs that another live process is training."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mtpeft.study.claim import claim_path, holder, holder_alive, try_claim


@pytest.fixture
def sleeper():
    """A live process that is not this one."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    yield process.pid
    process.kill()
    process.wait()


def write_claim(run_dir: Path, host: str, pid: int, age_s: float = 0.0) -> Path:
    path = claim_path(run_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"host": host, "pid": pid, "since": time.time() - age_s}))
    os.utime(path, (time.time() - age_s, time.time() - age_s))
    return path


def test_one_holder_at_a_time_and_release_frees_it(tmp_path):
    run = tmp_path / "runs" / "a"
    first = try_claim(run)
    assert first is not None and holder(first.path)["pid"] == os.getpid()
    assert not run.exists()  # the claim lives beside the run directory, which --overwrite may replace
    assert try_claim(run) is None  # this process is alive: its own claim is held
    first.release()
    assert not first.path.exists()
    again = try_claim(run)
    assert again is not None
    again.release()


def test_a_dead_process_on_this_host_loses_its_claim_at_once(tmp_path, sleeper):
    run = tmp_path / "a"
    write_claim(run, socket.gethostname(), sleeper)
    assert try_claim(run) is None  # alive
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    write_claim(run, socket.gethostname(), int(finished.stdout))  # that process has exited
    taken = try_claim(run)
    assert taken is not None and holder(taken.path)["pid"] == os.getpid()
    taken.release()


def test_another_hosts_claim_counts_while_its_heartbeat_is_fresh(tmp_path):
    run = tmp_path / "a"
    write_claim(run, "elsewhere", 1, age_s=5)
    assert try_claim(run, stale_after_s=60) is None
    write_claim(run, "elsewhere", 1, age_s=120)
    taken = try_claim(run, stale_after_s=60)
    assert taken is not None and holder(taken.path)["host"] == socket.gethostname()
    taken.release()


def test_the_heartbeat_keeps_a_claim_fresh(tmp_path):
    claim = try_claim(tmp_path / "a", heartbeat_s=0.05)
    assert claim is not None
    os.utime(claim.path, (time.time() - 100, time.time() - 100))
    with claim:
        deadline = time.time() + 10
        while time.time() - claim.path.stat().st_mtime > 50 and time.time() < deadline:
            time.sleep(0.02)
        assert holder_alive(claim.path, stale_after_s=50)
        assert time.time() - claim.path.stat().st_mtime < 50
    assert not claim.path.exists()


def test_study_skips_runs_that_a_live_process_trains(tmp_path, sleeper):
    from mtpeft.study import expand, load_study, run_study

    configs = Path(__file__).resolve().parents[2] / "configs"
    study = load_study(configs / "study-smoke.yaml", [f"output_dir={tmp_path}", "axes.model=[tiny-bert]"])
    runs = expand(study)
    for run in runs:
        write_claim(run.config.run_dir(), socket.gethostname(), sleeper)
    outcome = run_study(study, echo=False)
    assert outcome.busy == [r.run_id for r in runs] and not outcome.trained and not outcome.failed
    assert not any(r.config.run_dir().exists() for r in runs)
