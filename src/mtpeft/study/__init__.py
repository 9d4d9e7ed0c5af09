"""Studies: grids of runs (SFT/MFT x methods x models x seeds), their ledger, tables and plots."""

from mtpeft.study.config import StudyConfig, load_study
from mtpeft.study.execute import StudyOutcome, run_study
from mtpeft.study.grid import PlannedRun, expand, parse_shard
from mtpeft.study.grid import shard as shard_runs
from mtpeft.study.report import StudyReport, build_report, write_report

__all__ = ["PlannedRun", "StudyConfig", "StudyOutcome", "StudyReport", "build_report", "expand", "load_study",
           "parse_shard", "run_study", "shard_runs", "write_report"]
