"""`mtpeft study` and `mtpeft report` end to end on the smoke study with a tiny model (real processes)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread
from typer.testing import CliRunner

from mtpeft.cli import app
from mtpeft.ledger import dir_bytes
from mtpeft.run.files import RunFiles, is_complete
from mtpeft.study import expand, load_study, run_study, shard_runs
from mtpeft.study.collect import collect

pytestmark = pytest.mark.slow
CONFIGS = Path(__file__).resolve().parents[2] / "configs"
SMALL = "{train: 48, validation: 32, test: 32}"


def tiny_study_args(out: Path) -> list[str]:
    return [f"output_dir={out}", "axes.model=[tiny-bert]",
            f"overrides=['tasks.0.max_examples={SMALL}', 'tasks.2.max_examples={SMALL}', train.epochs=1, "
            "train.max_length=48, train.batch_size=16, train.log_every=1]"]


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Shard 1/2, then the whole study: the second call must train exactly shard 2/2."""
    out = tmp_path_factory.mktemp("study")
    study = load_study(CONFIGS / "study-smoke.yaml", tiny_study_args(out))
    runs = expand(study)
    first = run_study(study, (1, 2), echo=False)
    assert first.trained == [r.run_id for r in shard_runs(runs, 1, 2)] and not first.skipped
    rest = run_study(study, echo=False)
    assert rest.trained == [r.run_id for r in shard_runs(runs, 2, 2)]
    assert rest.skipped == first.trained
    again = run_study(study, echo=False)
    assert again.trained == [] and len(again.skipped) == len(runs) == 6
    return out


def test_every_run_finished_and_results_cover_them(study_dir: Path) -> None:
    records, unfinished = collect(study_dir)
    assert len(records) == 6 and not unfinished
    rows = (study_dir / "results.csv").read_text().splitlines()
    assert len(rows) == 1 + sum(len(r.tasks) for r in records) * 2  # run x task x (validation, test)
    assert not any((r.path / "checkpoints").exists() for r in records)  # finished runs keep no optimizer state


def test_stored_bytes_are_the_files_on_disk(study_dir: Path) -> None:
    for record in collect(study_dir)[0]:
        module = record.path / ("model" if record.method == "full" else "adapter")
        files = dir_bytes(module, record.path / "heads.safetensors", record.path / "heads.json")
        assert record.ledger.storage.bytes_total == files


def test_report_has_both_tables_the_ledger_and_plots_with_data(study_dir: Path) -> None:
    report = (study_dir / "report.md").read_text()
    for heading in ("Multi-task fine-tuning (MFT)", "Single-task fine-tuning (SFT)", "PEFT - Full",
                    "MFT - SFT", "Model - lexical baseline", "Efficiency ledger", "storage SFT/MFT"):
        assert heading in report
    assert "| tiny-bert | lora | 1 |" in report
    assert "| – | lexical | 1 | – |" in report  # the baseline's own row in the score tables
    assert "![Model - lexical](plots/forest_vs_lexical.png)" in report
    for name in ("pareto", "forest_peft_vs_full", "forest_vs_lexical", "training_curves"):
        image = imread(study_dir / "plots" / f"{name}.png")
        colours = np.unique(image.reshape(-1, image.shape[-1]), axis=0)
        assert len(colours) > 50, name  # axes, labels and data, not a blank canvas
    for table in ("mft_results", "sft_results", "ledger", "savings", "delta_peft_vs_full", "delta_vs_lexical"):
        assert (study_dir / "tables" / f"{table}.csv").read_text().count("\n") >= 2
        assert "\\begin{tabular}" in (study_dir / "tables" / f"{table}.tex").read_text()


def test_versus_lexical_is_each_runs_score_minus_its_own_baseline(study_dir: Path) -> None:
    import csv

    records = {r.run_id: r for r in collect(study_dir)[0]}
    rows = list(csv.DictReader((study_dir / "tables" / "delta_vs_lexical.csv").read_text().splitlines()))
    assert len(rows) == 2 * 2 * 2  # (SFT, MFT) x (full, lora) x 2 tasks
    for row in rows:
        setting, _, method = row["setting/model"].partition(" ")[0].lower(), None, row["comparison"].split(" - ")[0]
        run = next(r for r in records.values() if r.setting == setting and r.method == method
                   and row["task"] in r.tasks)
        assert row["comparison"] == f"{method} - lexical"
        expected = run.score(row["task"]) - run.lexical_score(row["task"])
        assert float(row["Δ mean ± std over seeds"]) == pytest.approx(expected, abs=5e-4)
        assert int(row["n pairs"]) == len(run.predictions(row["task"]))  # paired on every test example


def test_learning_curve_sweeps_training_sizes(tmp_path: Path) -> None:
    args = [*tiny_study_args(tmp_path), "axes.setting=[mft]", "axes.method=[lora]", "axes.train_examples=[16, 48]"]
    run_study(load_study(CONFIGS / "study-smoke.yaml", args), echo=False)
    records, _ = collect(tmp_path)
    assert sorted(r.ledger.meta_info.data["search"]["train"]["examples"] for r in records) == [16, 48]
    report = (tmp_path / "report.md").read_text()
    assert "Learning curve" in report and "largest size, 48 training examples" in report
    curve = (tmp_path / "tables" / "learning_curve.csv").read_text().splitlines()
    assert [line.split(",")[:4] for line in curve[1:]] == [
        ["16", "MFT", "tiny-bert", "lora"], ["48", "MFT", "tiny-bert", "lora"],
        ["16", "MFT", "–", "lexical"], ["48", "MFT", "–", "lexical"]]
    image = imread(tmp_path / "plots" / "learning_curve.png")
    assert len(np.unique(image.reshape(-1, image.shape[-1]), axis=0)) > 50


def test_report_is_rebuilt_from_the_run_directories_alone(study_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "rebuilt"
    shutil.copytree(study_dir / "runs", copy / "runs")
    result = CliRunner().invoke(app, ["report", str(copy)])
    assert result.exit_code == 0, result.output
    assert (copy / "report.md").read_text().replace("rebuilt", study_dir.name) == \
        (study_dir / "report.md").read_text()
    assert (copy / "results.csv").read_text() == (study_dir / "results.csv").read_text()
    tables = json.loads(CliRunner().invoke(app, ["report", str(copy), "--json"]).stdout)
    mft = tables["mft_results"]
    assert mft["columns"][:3] == ["model", "method", "seeds"] and ["–", "lexical"] in [r[:2] for r in mft["rows"]]
    assert {"sft_results", "delta_vs_lexical", "ledger", "savings"} <= set(tables)


EVIDENCE = ("run.json", "config.yaml", "metrics.json", "ledger.json", "predictions/*.jsonl.gz")
"""What a study commits of each run (results/<study>/, .gitignore keeps the rest out)."""


def test_the_committed_evidence_alone_rebuilds_the_report_and_is_not_trained_again(study_dir: Path,
                                                                                   tmp_path: Path) -> None:
    clone = tmp_path / "fresh-clone"  # what another machine checks out: no weights, no raw prediction files
    for run in (study_dir / "runs").iterdir():
        if run.is_dir():
            for pattern in EVIDENCE:
                for source in run.glob(pattern):
                    target = clone / "runs" / run.name / source.relative_to(run)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(source, target)
    raw = list(study_dir.glob("runs/*/predictions/*.jsonl"))
    assert raw and len(list(clone.glob("runs/*/predictions/*.jsonl.gz"))) == len(raw)
    assert not list(clone.glob("runs/*/*.safetensors"))
    result = CliRunner().invoke(app, ["report", str(clone)])
    assert result.exit_code == 0, result.output
    assert (clone / "results.csv").read_text() == (study_dir / "results.csv").read_text()
    assert (clone / "tables" / "delta_vs_lexical.csv").read_text() == \
        (study_dir / "tables" / "delta_vs_lexical.csv").read_text()  # paired tests read the gzipped predictions
    plan = CliRunner().invoke(app, ["study", str(CONFIGS / "study-smoke.yaml"), *tiny_study_args(clone), "--dry-run"])
    assert plan.exit_code == 0 and plan.output.count("finished") == 6 and "to run" not in plan.output, plan.output
    resumed = run_study(load_study(CONFIGS / "study-smoke.yaml", tiny_study_args(clone)), echo=False)
    assert resumed.trained == [] and len(resumed.skipped) == 6
    run = next(r for r in (study_dir / "runs").iterdir() if r.is_dir())
    assert RunFiles(run).pack_predictions() == []  # current copies are not written again
    packed = {p: p.read_bytes() for p in run.glob("predictions/*.gz")}
    for path in packed:
        path.unlink()
    RunFiles(run).pack_predictions()
    assert packed == {p: p.read_bytes() for p in run.glob("predictions/*.gz")}  # same rows, same bytes


def run_states(runs: Path) -> dict[str, str]:
    """Each run directory judged once (finished, interrupted with a checkpoint, or started): a run can finish
    between two looks at it, and two looks that disagree would take one run for both."""
    states = {}
    for path in sorted(runs.iterdir()) if runs.is_dir() else []:
        if path.is_dir():
            checkpointed = (path / "checkpoints" / "last.pt").is_file()
            states[path.name] = "finished" if is_complete(path) else "interrupted" if checkpointed else "started"
    return states


def test_killed_study_finishes_only_what_was_missing(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    # two SFT runs; small batches and a checkpoint after every step, so that the kill lands inside a run
    args = [*tiny_study_args(tmp_path)[:2], "axes.setting=[sft]", "axes.method=[lora]",
            f"overrides=['tasks.0.max_examples={SMALL}', 'tasks.2.max_examples={SMALL}', train.epochs=1, "
            "train.max_length=48, train.batch_size=4, train.checkpoint_every=1]"]
    command = [sys.executable, "-m", "mtpeft", "study", str(CONFIGS / "study-smoke.yaml"), *args]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    runs = tmp_path / "runs"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        if {"finished", "interrupted"} <= set(run_states(runs).values()):
            break
        time.sleep(0.02)
    assert process.poll() is None, "the study finished (or failed) before it could be killed"
    os.killpg(process.pid, signal.SIGKILL)  # the study and the run it is training, mid-run
    process.wait()
    states = run_states(runs)  # judged once more, now that nothing writes: what the resumed study will find
    finished = {name for name, state in states.items() if state == "finished"}
    interrupted = [runs / name for name, state in states.items() if state == "interrupted"]
    assert len(finished) == 1 and len(interrupted) == 1, states
    capfd.readouterr()
    outcome = run_study(load_study(CONFIGS / "study-smoke.yaml", args), echo=False)
    assert set(outcome.skipped) == finished and outcome.trained == [interrupted[0].name]
    assert f"resuming {interrupted[0]}" in capfd.readouterr().out  # from its checkpoint, not from scratch
    assert len(collect(tmp_path)[0]) == 2
