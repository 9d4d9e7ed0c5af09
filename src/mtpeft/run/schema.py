"""Typed ``metrics.json`` and ``ledger.json``: the two files every run writes and every report reads.

Training runs and prompting runs write both through these models, and studies, reports and the console read
them back through :func:`read_metrics` and :func:`read_ledger`, so a field is named in one place. Each file
carries ``schema_version``; files written before it existed (version 1 without the field) read as version 1.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from mtpeft.errors import RunError
from mtpeft.io import write_json

SCHEMA_VERSION = 1
PROMPTING = "prompt"
"""``run_info.kind`` (and ``run.json`` ``kind``) of a prompting run, which trains and stores nothing; training
runs have none."""
Scores = dict[str, float]  # metric name -> value (higher is better); prompting adds its diagnostics
M = TypeVar("M", bound=BaseModel)


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Versioned(_Record):
    schema_version: Literal[1]

    def as_json(self) -> dict[str, Any]:
        """The file's content: fields that were never set are left out, as the file was always written."""
        return self.model_dump(mode="json", exclude_unset=True)

    @model_validator(mode="before")
    @classmethod
    def _current_version(cls, data: Any) -> Any:
        if isinstance(data, dict) and "schema_version" not in data:
            return {"schema_version": SCHEMA_VERSION, **data}
        return data


# ---------------------------------------------------------------- metrics.json


class LexicalScores(_Record):
    """The lexical baseline of one task, fitted on the run's training split (see :mod:`mtpeft.baselines`)."""

    method: str
    threshold: float | None = None
    validation: Scores | None = None
    test: Scores | None = None
    all: Scores | None = None
    skipped: str | None = None  # why it could not be fitted (then it has no scores)

    def split(self, name: str) -> Scores | None:
        return getattr(self, name, None) if name in ("validation", "test", "all") else None


class TaskMetrics(_Record):
    """Every metric of one task per split, and what it is compared with."""

    kind: str
    metric: str  # the main metric (model selection, tables)
    threshold: float | None = None  # classification: tuned on validation, applied to test
    validation: Scores | None = None
    test: Scores | None = None
    all: Scores | None = None  # `mtpeft eval --split all`
    baseline: dict[str, float | None] | None = None  # per split: the trivial baseline's main metric
    lexical: LexicalScores | None = None
    untrained: dict[str, Scores] | None = None  # generation: the model before training, per split

    def scores(self, split: str) -> Scores:
        found = getattr(self, split, None) if split in ("validation", "test", "all") else None
        if found is None:
            raise RunError(f"no {split!r} scores for this task (it has {', '.join(self.splits())})")
        return found

    def splits(self) -> list[str]:
        return [s for s in ("validation", "test", "all") if getattr(self, s) is not None]

    def main(self, split: str = "test") -> float:
        return float(self.scores(split)[self.metric])

    def lexical_main(self, split: str = "test") -> float | None:
        scores = self.lexical.split(split) if self.lexical else None
        return None if scores is None or self.metric not in scores else float(scores[self.metric])

    def trivial(self, split: str = "test") -> float | None:
        return (self.baseline or {}).get(split)


class Selected(_Record):
    """Which evaluation's weights the run kept."""

    epoch: int | None
    optimizer_step: int | None
    validation_mean: float


class Metrics(_Versioned):
    """metrics.json."""

    tasks: dict[str, TaskMetrics]
    mean: dict[str, float]  # per split: the mean of the tasks' main metrics
    selected: Selected | None = None  # training runs


# ---------------------------------------------------------------- ledger.json


class RunInfo(_Record):
    """What ran: model, method, tasks, precision, device (prompting adds how it asked)."""

    name: str
    model: str  # the config's entry: a zoo name names the same weights on any machine
    model_source: str  # the folder (absolute) or hub id it resolved to: where a reopened run finds its base
    method: str
    setting: str
    tasks: list[str]
    seed: int
    precision: str
    device: str
    processes: int
    method_targets: list[str] | None = None
    kind: str | None = None  # "prompt" for prompting runs
    split: str | None = None
    mode: str | None = None
    shots: int | None = None
    demonstrations: str | None = None
    balanced: bool | None = None
    parse_rule: str | None = None
    templates: dict[str, str] | None = None


class Parameters(_Record):
    total: int
    backbone: int
    method_trainable: int
    heads: int
    trainable: int
    trainable_percent: float
    method_trainable_percent: float


class Storage(_Record):
    bytes_total: int
    bytes_shared_module: int
    bytes_heads: int
    note: str


class Flops(_Record):
    """Analytic FLOPs (see :mod:`mtpeft.ledger.flops`)."""

    total: int
    counted: str
    forward: int | None = None
    backward_activations: int | None = None
    backward_weights: int | None = None
    saved_by_frozen_weights: int | None = None
    achieved_gflop_per_s: float | None = None
    linear_weights_per_token: int | None = None
    trainable_linear_weights_per_token: int | None = None
    target_tokens: int | None = None
    probe_forward: int | None = None  # train.probe_epochs: the frozen pass over the training data
    inference_forward: int | None = None  # prompting


class TrainInfo(_Record):
    """What training processed and what it took (prompting: what inference processed)."""

    optimizer_steps: int
    examples: int
    examples_per_task: dict[str, int]
    real_tokens: int
    padded_tokens: int
    padding_share: float
    wall_time_s: float
    train_time_s: float
    real_tokens_per_s: float
    peak_rss_bytes: int
    flops: Flops
    epochs_completed: int | None = None
    eval_time_s: float | None = None
    peak_device_bytes: int | None = None
    attention_cells: int | None = None
    head_probe: dict[str, Any] | None = None  # train.probe_epochs: what fitting the heads first computed
    prompts: int | None = None  # prompting
    generated_tokens: int | None = None
    inference_time_s: float | None = None
    note: str | None = None


class Baselines(_Record):
    lexical_fit_time_s: dict[str, float] = Field(default_factory=dict)  # "total" and per task


class MetaInfo(_Record):
    packages: dict[str, str]
    git_commit: str | None
    data: dict[str, dict[str, Any]]  # per task: examples and content hash per split, source, path
    cpu: dict[str, Any] | None = None


class Ledger(_Versioned):
    """ledger.json: the efficiency record of a run."""

    run_info: RunInfo
    parameters: Parameters
    storage: Storage
    train_info: TrainInfo
    meta_info: MetaInfo
    baselines: Baselines = Field(default_factory=Baselines)

    @property
    def is_prompting(self) -> bool:
        return self.run_info.kind == PROMPTING


# ---------------------------------------------------------------- reading and writing


def read_metrics(path: Path) -> Metrics:
    return _read(path, Metrics)


def read_ledger(path: Path) -> Ledger:
    return _read(path, Ledger)


def write_record(path: Path, record: Metrics | Ledger) -> None:
    """Write ``record`` atomically (metrics.json or ledger.json)."""
    write_json(path, record.as_json())


def _read(path: Path, schema: type[M]) -> M:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunError(f"{path}: missing") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise RunError(f"{path}: not a readable JSON file ({err})") from None
    try:
        return schema.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise RunError(f"{path}: not a valid {schema.__name__.lower()} file: {where}: {first['msg']}"
                       + (f" (and {len(err.errors()) - 1} more problems)" if len(err.errors()) > 1 else "")) from None
