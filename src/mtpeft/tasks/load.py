"""Turn a task entry of the config into checked train/validation/test examples."""

from __future__ import annotations

import inspect
import warnings
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from mtpeft.config import SPLITS, RunConfig, TaskConfig
from mtpeft.errors import ConfigError, DataError
from mtpeft.tasks.readers.base import ALL, SOURCES, Source, SourceData
from mtpeft.tasks.registry import DEFAULT_METRIC, TASKS
from mtpeft.tasks.spec import METRIC_NAMES, Example, TaskKind, TaskSpec
from mtpeft.tasks.splits import cap_stratified, fold_split, split_examples


@dataclass
class TaskData:
    """A task's spec and its examples per split."""

    spec: TaskSpec
    splits: dict[str, list[Example]]
    source: str
    path: str | None

    def stats(self) -> dict[str, dict[str, Any]]:
        out = {}
        for split, examples in self.splits.items():
            labels = Counter(ex.label for ex in examples)
            row: dict[str, Any] = {"examples": len(examples)}
            if self.spec.is_classification:
                row["positive"] = labels.get(1, 0)
                row["positive_rate"] = round(labels.get(1, 0) / max(len(examples), 1), 4)
            out[split] = row
        return out


def resolve_spec(task: TaskConfig) -> TaskSpec:
    """The built-in spec, adjusted by the entry's ``kind``/``metric``; or a new spec for a custom name."""
    if task.name in TASKS:
        base = TASKS.get(task.name)
        if task.kind is not None and task.kind != base.kind:
            raise ConfigError(f"tasks.{task.name}.kind: built-in task {task.name!r} is {base.kind}, not {task.kind}")
        spec = replace(base, metric=task.metric or base.metric, instruction=task.instruction or base.instruction,
                       language=task.language or base.language)
    else:
        if task.kind is None:
            raise ConfigError(
                f"tasks.{task.name}: {task.name!r} is not a built-in task ({', '.join(TASKS.names())}); "
                "give its `kind` (binary, pair, retrieval or generation) and `source`"
            )
        kind = TaskKind(task.kind)
        instruction = task.instruction or (f"{task.name}:" if kind is TaskKind.GENERATION else None)
        spec = TaskSpec(task.name, kind, task.metric or DEFAULT_METRIC[kind], f"custom {kind} task",
                        instruction=instruction, language=task.language)
    valid = available_metrics(spec)
    if spec.metric not in valid:
        raise ConfigError(f"tasks.{task.name}.metric: {spec.metric!r} is not a metric of this {spec.kind} task; "
                          f"valid: {', '.join(valid)}")
    check_input_options(task, spec.kind)
    return spec


def check_input_options(task: TaskConfig, kind: TaskKind) -> None:
    """The input and loss options a task sets must fit its kind; every mismatch at once, naming the field."""
    problems = []
    if task.long_inputs == "windows" and kind is TaskKind.GENERATION:
        problems.append("long_inputs: windows is for classification and retrieval inputs, not generation prompts")
    if task.long_inputs == "windows" and kind is TaskKind.PAIR and task.pair_encoding == "joint":
        problems.append("long_inputs: windows needs pair_encoding: siamese (a joint pair's windows would hold "
                        "one function or the other, never both)")
    if task.pair_encoding == "siamese" and kind is not TaskKind.PAIR:
        problems.append(f"pair_encoding: siamese is for pair tasks; this is a {kind} task")
    # a setting moved from its default where it does nothing (a resolved config.yaml spells out every default)
    unused = [name for name in ("window_stride", "max_windows", "window_pooling") if _changed(task, name)]
    if unused and task.long_inputs != "windows":
        problems.append(f"{', '.join(unused)}: set, but long_inputs is {task.long_inputs!r}; add long_inputs: windows")
    if _changed(task, "focal_gamma") and task.loss != "focal":
        problems.append("focal_gamma: set, but loss is 'bce'; add loss: focal")
    classification = kind in (TaskKind.BINARY, TaskKind.PAIR)
    for name, value in (("loss", task.loss != "bce"), ("pos_weight", task.pos_weight is not None),
                        ("oversample_positives", task.oversample_positives is not None)):
        if value and not classification:
            problems.append(f"{name}: only classification tasks (binary, pair) have classes to weigh; "
                            f"this is a {kind} task")
    if problems:
        raise ConfigError([f"tasks.{task.name}.{p}" for p in problems])
    if task.pos_weight == "auto" and task.oversample_positives == "auto":
        warnings.warn(f"tasks.{task.name}: pos_weight: auto and oversample_positives: auto both make up for the rare "
                      "class, so positives count about (negatives/positives)^2 times; keep one", stacklevel=2)


def _changed(task: TaskConfig, name: str) -> bool:
    return getattr(task, name) != TaskConfig.model_fields[name].default


def available_metrics(spec: TaskSpec) -> tuple[str, ...]:
    """The metrics a task reports: CodeBLEU needs a code target, the parse rate a Python one."""
    names = METRIC_NAMES[spec.kind]
    if spec.kind is not TaskKind.GENERATION:
        return names
    return tuple(m for m in names if not (m == "codebleu" and spec.language is None)
                 and not (m == "parses" and spec.language != "python"))


def load_task(task: TaskConfig, config: RunConfig) -> TaskData:
    """Read, split and cap one task's data; every split must be non-empty."""
    spec = resolve_spec(task)
    source_name = task.source or spec.default_source
    if source_name is None:
        raise ConfigError(f"tasks.{task.name}.source: missing; valid: {', '.join(SOURCES.names())}")
    source = SOURCES.get(source_name)
    if spec.kind not in source.kinds:
        raise ConfigError(
            f"tasks.{task.name}.source: {source_name!r} makes {'/'.join(source.kinds)} tasks, not {spec.kind}"
        )
    raw_path = task.path or (spec.default_path if source_name == spec.default_source else None)
    path = config.resolve_path(raw_path) if raw_path else None
    if path is None and source.needs_path:
        raise ConfigError(f"tasks.{task.name}.path: source {source_name!r} needs a path")
    raw = _call_source(source, path, task, spec.kind)
    splits = _split(raw, task, config.train.seed)
    for split in SPLITS:
        splits[split] = cap_stratified(splits[split], task.cap(split), config.train.seed)
        _check_split(spec, split, splits[split], path or source_name)
    return TaskData(spec, splits, source_name, str(path) if path else None)


def _call_source(source: Source, path: Path | None, task: TaskConfig, kind: TaskKind) -> SourceData:
    """Call a reader with the entry's ``reader_args``; a reader that feeds several kinds takes ``kind``."""
    params = inspect.signature(source.read).parameters
    allowed = [p for p in params if p not in ("path", "kind")]
    unknown = sorted(set(task.reader_args) - set(allowed))
    if unknown:
        raise ConfigError(
            f"tasks.{task.name}.reader_args: unknown {', '.join(unknown)} for source {source.name!r}; "
            f"valid: {', '.join(allowed) or 'none'}"
        )
    extra = {"kind": kind} if "kind" in params else {}
    try:
        return source.read(path, **task.reader_args, **extra)
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: cannot read ({err})") from err


def _split(raw: SourceData, task: TaskConfig, seed: int) -> dict[str, list[Example]]:
    if task.folds is not None:
        if set(raw) != {ALL}:
            raise ConfigError(f"tasks.{task.name}.folds: the source ships its own splits ({', '.join(sorted(raw))}); "
                              "folds needs a source that is split here (e.g. flakeflagger)")
        try:
            return fold_split(raw[ALL], task.folds, task.fold, seed)
        except ValueError as err:
            raise ConfigError(f"tasks.{task.name}.folds: {err}") from err
    if set(raw) == {ALL}:
        return split_examples(raw[ALL], task.split_ratios, seed)
    if set(raw) == {"validation", "test"}:
        # a release without its training file (as in ../shared): train on part of the published validation
        # split, in the proportion of split_ratios; the published test split stays untouched
        train_share, validation_share, _ = task.split_ratios
        carved = split_examples(raw["validation"], (train_share / (train_share + validation_share),
                                                    validation_share / (train_share + validation_share), 0.0), seed)
        return {"train": carved["train"], "validation": carved["validation"], "test": list(raw["test"])}
    missing = [s for s in SPLITS if s not in raw]
    if missing:
        raise DataError(f"task {task.name!r}: the source has splits {sorted(raw)} but lacks {missing}")
    return {s: list(raw[s]) for s in SPLITS}


def _check_split(spec: TaskSpec, split: str, examples: list[Example], where: Path | str) -> None:
    if not examples:
        raise DataError(f"{where}: task {spec.name!r} has an empty {split} split; give more data or other split_ratios")
    if spec.is_classification and any(ex.label not in (0, 1) for ex in examples):
        bad = next(ex for ex in examples if ex.label not in (0, 1))
        raise DataError(f"{bad.meta.get('file', where)}: example {bad.id!r} has label {bad.label!r}; expected 0 or 1")
    if spec.kind is TaskKind.GENERATION:
        bad = next((ex for ex in examples if not ex.target), None)
        if bad is not None:
            raise DataError(f"{bad.meta.get('file', where)}: example {bad.id!r} has no target (generation task)")
        return
    if spec.kind is not TaskKind.BINARY and any(ex.text_pair is None for ex in examples):
        bad = next(ex for ex in examples if ex.text_pair is None)
        raise DataError(f"{bad.meta.get('file', where)}: example {bad.id!r} lacks its second input ({spec.kind} task)")
