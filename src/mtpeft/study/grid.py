"""Expand a study into its runs, and split them into shards that machines can share."""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import product
from pathlib import Path

from mtpeft.config import RunConfig, load_config
from mtpeft.errors import ConfigError
from mtpeft.methods import METHODS
from mtpeft.study.config import StudyConfig


@dataclass(frozen=True)
class PlannedRun:
    run_id: str
    setting: str
    model: str
    method: str
    seed: int
    config: RunConfig


def expand(study: StudyConfig) -> list[PlannedRun]:
    """Every run of the study, sorted by id: setting x model x method x seed (x task for SFT)."""
    base = study.base_path()
    base_config = load_config(base, study.overrides)
    unknown = sorted(m for m in study.method_overrides if m not in METHODS)  # others may be off the axes today
    if unknown:
        raise ConfigError(f"method_overrides: unknown method {', '.join(unknown)}; valid: {', '.join(METHODS.names())}")
    names = [t.name for t in base_config.tasks]
    missing = sorted(set(study.tasks or []) - set(names))
    if missing:
        raise ConfigError(f"tasks: {', '.join(missing)} not in the base config {base} (it has {', '.join(names)})")
    chosen = [n for n in names if study.tasks is None or n in study.tasks]
    if "mft" in study.axes.setting and len(chosen) < 2:
        raise ConfigError(f"axes.setting: mft needs two or more tasks, the study has {', '.join(chosen)}")
    runs_dir = (study.study_dir() / "runs").resolve()
    runs: list[PlannedRun] = []
    for setting, model, method, seed in product(study.axes.setting, study.axes.model or [base_config.model],
                                                study.axes.method, study.axes.seed or [base_config.train.seed]):
        stem = f"{setting}-{_slug(model)}-{method}-seed{seed}"
        for only in ([n] for n in chosen) if setting == "sft" else [chosen]:
            run_id = stem + (f"-{only[0]}" if setting == "sft" else "")
            own_args = [] if method == base_config.method else ["method_args={}"]  # base args fit its method only
            overrides = [*study.overrides, f"model={model}", f"method={method}", *own_args,
                         *study.method_overrides.get(method, []), f"train.seed={seed}", f"name={run_id}",
                         f"output_dir={runs_dir / run_id}"]
            try:
                config = load_config(base, overrides)
            except ConfigError as err:
                raise ConfigError([f"run {run_id}: {p}" for p in err.problems]) from None
            config = config.model_copy(update={"tasks": [t for t in config.tasks if t.name in only]})
            runs.append(PlannedRun(run_id, setting, model, method, seed, config))
    return sorted(runs, key=lambda r: r.run_id)


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/n"`` (1-based) -> ``(i, n)``."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not match or not 1 <= int(match[1]) <= int(match[2]):
        raise ConfigError(f"--shard {text!r}: expected i/n with 1 <= i <= n, e.g. 2/4")
    return int(match[1]), int(match[2])


def shard(runs: list[PlannedRun], index: int, count: int) -> list[PlannedRun]:
    """The ``index``-th of ``count`` disjoint shards (1-based); together they are exactly ``runs``."""
    return runs[index - 1 :: count]


def _slug(model: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(model).name or model)
