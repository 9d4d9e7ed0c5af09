"""Expand a study into its runs, and split them into shards that machines can share."""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import combinations, product
from pathlib import Path

from mtpeft.config import SPLITS, RunConfig, TaskConfig, load_config
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
    train_examples: int | None = None  # the study's learning-curve axis; None: the base config's caps


def expand(study: StudyConfig) -> list[PlannedRun]:
    """Every run of the study, sorted by id: setting x model x method x seed x training size (x task for SFT)."""
    base = study.base_path()
    base_config = load_config(base, study.overrides)
    unknown = sorted(m for m in study.method_overrides if m not in METHODS)  # others may be off the axes today
    if unknown:
        raise ConfigError(f"method_overrides: unknown method {', '.join(unknown)}; valid: {', '.join(METHODS.names())}")
    models = study.axes.model or [base_config.model]
    unplanned = sorted(set(study.model_overrides) - set(models))
    if unplanned:
        raise ConfigError(f"model_overrides: {', '.join(unplanned)} not among the study's models "
                          f"({', '.join(models)})")
    names = [t.name for t in base_config.tasks]
    missing = sorted(set(study.tasks or []) - set(names))
    if missing:
        raise ConfigError(f"tasks: {', '.join(missing)} not in the base config {base} (it has {', '.join(names)})")
    chosen = [n for n in names if study.tasks is None or n in study.tasks]
    if {"mft", "pair"} & set(study.axes.setting) and len(chosen) < 2:
        raise ConfigError(f"axes.setting: mft and pair need two or more tasks, the study has {', '.join(chosen)}")
    strays = sorted({t for g in study.groups for t in g} - set(chosen))
    if strays:
        raise ConfigError(f"groups: {', '.join(strays)} not among the study's tasks ({', '.join(chosen)})")
    runs_dir = (study.study_dir() / "runs").resolve()
    runs: list[PlannedRun] = []
    for setting, model, method, seed, size in product(study.axes.setting, models, study.axes.method,
                                                      study.axes.seed or [base_config.train.seed],
                                                      study.axes.train_examples or [None]):
        for only in task_sets(setting, chosen, study.groups):
            run_id = "-".join([setting_of(only, chosen), _slug(model), method, f"seed{seed}",
                               *([f"n{size}"] if size is not None else []),
                               *(["+".join(only)] if len(only) < len(chosen) else [])])
            own_args = [] if method == base_config.method else ["method_args={}"]  # base args fit its method only
            overrides = [*study.overrides, f"model={model}", f"method={method}", *own_args,
                         *study.model_overrides.get(model, []), *study.method_overrides.get(method, []),
                         f"train.seed={seed}", f"name={run_id}", f"output_dir={runs_dir / run_id}"]
            try:
                config = load_config(base, overrides)
            except ConfigError as err:
                raise ConfigError([f"run {run_id}: {p}" for p in err.problems]) from None
            tasks = [with_train_cap(t, size) for t in config.tasks if t.name in only]
            config = config.model_copy(update={"tasks": tasks})
            runs.append(PlannedRun(run_id, setting_of(only, chosen), model, method, seed, config, size))
    unique = {r.run_id: r for r in runs}  # a 2-task group is also a pair run: train it once
    return sorted(unique.values(), key=lambda r: r.run_id)


def with_train_cap(task: TaskConfig, size: int | None) -> TaskConfig:
    """``task`` with its training split capped at ``size`` examples (validation and test keep their caps)."""
    if size is None:
        return task
    caps = {split: task.cap(split) for split in SPLITS if task.cap(split) is not None}
    return task.model_copy(update={"max_examples": {**caps, "train": size}})


def task_sets(setting: str, tasks: list[str], groups: list[list[str]]) -> list[list[str]]:
    """The task set of every run of ``setting`` (in the base config's task order)."""
    if setting == "sft":
        return [[t] for t in tasks]
    if setting == "pair":
        return [list(p) for p in combinations(tasks, 2)]
    if setting == "group":
        return [[t for t in tasks if t in group] for group in groups]
    return [tasks]


def setting_of(run_tasks: list[str] | tuple[str, ...], all_tasks: list[str] | set[str]) -> str:
    """What a run is, from its tasks alone: sft (one), mft (all), pair (two), group (others)."""
    if len(run_tasks) == 1:
        return "sft"
    if set(run_tasks) == set(all_tasks):
        return "mft"
    return "pair" if len(run_tasks) == 2 else "group"


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
