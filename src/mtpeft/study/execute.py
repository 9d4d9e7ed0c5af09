"""`mtpeft study`: run the missing runs of a study (or of one shard of it), then write its report.

Each run trains in its own process: a crash or an out-of-memory kill stays in that run, and its peak
memory in the ledger is its own. A finished run is never trained again, nor is one whose records alone are
there (a study's evidence, committed without weights, on another machine); an interrupted one resumes
from its last checkpoint, or starts over when it has none. A run is claimed before it trains
(:mod:`mtpeft.study.claim`), so study processes sharing the folder never train one run twice at once.
Every finished run's prediction files get a gzipped copy beside them: with config.yaml, metrics.json,
ledger.json and run.json, the part of a study worth committing."""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from mtpeft.config import dump_config
from mtpeft.errors import RunError
from mtpeft.io import write_json, write_text
from mtpeft.run.files import RunFiles
from mtpeft.study.claim import claim_path, holder, try_claim
from mtpeft.study.config import StudyConfig
from mtpeft.study.grid import PlannedRun, expand, shard
from mtpeft.study.report import write_report


@dataclass(frozen=True)
class StudyOutcome:
    planned: int  # runs of this shard
    skipped: list[str]  # already finished
    busy: list[str]  # claimed by another live study process
    trained: list[str]
    failed: list[str]
    report: Path | None


def run_study(study: StudyConfig, shard_of: tuple[int, int] = (1, 1), echo: bool = True) -> StudyOutcome:
    """Train every unfinished run of shard ``i/n`` and rebuild the report from what is on disk."""
    study_dir = study.study_dir()
    runs = shard(expand(study), *shard_of)
    write_json(study_dir / "study.json", {"name": study.name, "base": str(study.base_path().resolve()),
                                          "axes": study.axes.model_dump(), "overrides": study.overrides,
                                          "model_overrides": study.model_overrides,
                                          "method_overrides": study.method_overrides})
    skipped: list[str] = []
    busy: list[str] = []
    trained: list[str] = []
    failed: list[str] = []
    for number, run in enumerate(runs, 1):
        run_dir = run.config.run_dir()
        if RunFiles(run_dir).is_recorded():
            RunFiles(run_dir).pack_predictions()  # an older study's runs get their evidence packed too
            skipped.append(run.run_id)
            continue
        claim = try_claim(run_dir)
        if claim is None:
            owner = holder(claim_path(run_dir))
            _say(echo, f"[{number}/{len(runs)}] {run.run_id}: being trained by {owner.get('host', '?')} "
                       f"(process {owner.get('pid', '?')}); skipped")
            busy.append(run.run_id)
            continue
        with claim:
            if RunFiles(run_dir).is_recorded():  # finished by another process between the check above and the claim
                skipped.append(run.run_id)
                continue
            _say(echo, f"[{number}/{len(runs)}] {run.run_id}")
            code = _train(run, study_dir)
        if code != 0:
            failed.append(run.run_id)
            continue
        trained.append(run.run_id)
        RunFiles(run_dir).pack_predictions()
        if not study.keep_checkpoints:
            shutil.rmtree(RunFiles(run_dir).checkpoint.parent, ignore_errors=True)
    report = None
    try:
        report = write_report(study_dir)
    except RunError as err:
        _say(echo, f"no report yet: {err}")
    outcome = StudyOutcome(len(runs), skipped, busy, trained, failed, report)
    if failed:
        raise RunError(f"{len(failed)} of {len(runs)} runs failed (see their output above): {', '.join(failed)}; "
                       "run the study again to retry them")
    return outcome


def _train(run: PlannedRun, study_dir: Path) -> int:
    """Train one run in a child process; resume it when an earlier attempt left a checkpoint."""
    config_path = study_dir / "configs" / f"{run.run_id}.yaml"
    write_text(config_path, dump_config(run.config))
    run_dir = run.config.run_dir()
    mode = "--resume" if RunFiles(run_dir).checkpoint.is_file() else "--overwrite"
    command = [sys.executable, "-m", "mtpeft", "train", str(config_path), mode]
    return subprocess.run(command, check=False).returncode


def _say(echo: bool, message: str) -> None:
    if echo:
        print(message, flush=True)
