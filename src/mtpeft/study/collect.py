"""Read a study's finished run directories back: the only input of `mtpeft report`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mtpeft.errors import RunError
from mtpeft.run.files import RunFiles
from mtpeft.run.schema import PROMPTING as PROMPT
from mtpeft.run.schema import Ledger, Metrics, read_ledger, read_metrics
from mtpeft.study.grid import setting_of
from mtpeft.tasks.readers.base import iter_jsonl

"""A prompting run (``mtpeft prompt``) trains and stores nothing: no heads, no adapter."""


@dataclass(frozen=True)
class RunRecord:
    """One finished run, with the study axes read from its own files."""

    run_id: str
    path: Path
    config: dict[str, Any]  # config.yaml as written (a run config or a prompt config)
    metrics: Metrics
    ledger: Ledger
    setting: str  # sft, pair, group or mft from its tasks against the study's; prompt for prompting runs

    @property
    def tasks(self) -> list[str]:
        return sorted(self.metrics.tasks)

    @property
    def is_prompt(self) -> bool:
        return self.setting == PROMPT

    @property
    def is_pair(self) -> bool:
        """Two tasks in one module: a pair run, or the all-in-one run of a two-task study (its only pair)."""
        return len(self.tasks) == 2 and self.setting in ("pair", "mft")

    @property
    def model(self) -> str:
        return self.ledger.run_info.model

    @property
    def method(self) -> str:
        return self.ledger.run_info.method

    @property
    def seed(self) -> int:
        return self.ledger.run_info.seed

    @property
    def train_examples(self) -> int | None:
        """Training examples per task the run asked for (a study's ``train_examples`` axis): the largest
        training cap of its tasks; None when a task is uncapped."""
        caps = [_train_cap(task.get("max_examples")) for task in self.config.get("tasks", [])]
        return None if not caps or None in caps else max(c for c in caps if c is not None)

    def score(self, task: str, split: str = "test") -> float:
        return self.metrics.tasks[task].main(split)

    def lexical_score(self, task: str, split: str = "test") -> float | None:
        """The lexical baseline's main metric, fitted on this run's training examples (None: not measured)."""
        return self.metrics.tasks[task].lexical_main(split)

    def metric(self, task: str) -> str:
        return self.metrics.tasks[task].metric

    def predictions(self, task: str, split: str = "test") -> dict[str, dict[str, Any]]:
        """Rows of ``predictions/<task>.<split>.jsonl`` by example id (``split="test.lexical"``: the lexical
        baseline's rows on test)."""
        return read_predictions(self.path, task, split)

    def train_log(self) -> list[dict[str, Any]]:
        path = RunFiles(self.path).train_log
        return [row for _, row in iter_jsonl(path)] if path.is_file() else []


def collect(study_dir: Path) -> tuple[list[RunRecord], list[str]]:
    """Finished runs under ``study_dir/runs`` (sorted by id) and the ids of unfinished ones."""
    runs_dir = study_dir / "runs"
    if not runs_dir.is_dir():
        raise RunError(f"{study_dir}: not a study directory (no runs/ folder); run `mtpeft study CONFIG` first")
    found, unfinished = [], []
    for run_dir in sorted(p for p in runs_dir.iterdir() if p.is_dir()):
        if not RunFiles(run_dir).is_recorded():
            unfinished.append(run_dir.name)
            continue
        files = RunFiles(run_dir)
        config = yaml.safe_load(files.config.read_text(encoding="utf-8"))
        found.append((run_dir, config, read_metrics(files.metrics), read_ledger(files.ledger)))
    # prompting runs get their own table and are never paired with training runs
    trained = {t for _, _, metrics, ledger in found if not ledger.is_prompting for t in metrics.tasks}
    records = [RunRecord(path.name, path, config, metrics, ledger,
                         PROMPT if ledger.is_prompting else setting_of(list(metrics.tasks), trained))
               for path, config, metrics, ledger in found]
    return records, unfinished


def _train_cap(max_examples: Any) -> int | None:
    return max_examples.get("train") if isinstance(max_examples, dict) else max_examples


def read_predictions(run_dir: Path, task: str, split: str) -> dict[str, dict[str, Any]]:
    """Rows of ``run_dir/predictions/<task>.<split>.jsonl`` by example id (what paired tests align on)."""
    path = RunFiles(run_dir).saved_predictions(task, split)
    if not path.is_file():
        raise RunError(f"{path}: missing; paired tests need the runs' prediction files")
    return {str(row["id"]): row for _, row in iter_jsonl(path)}
